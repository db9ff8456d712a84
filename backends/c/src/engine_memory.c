/*
 * engine_memory.c - the memory:// engine.
 *
 * A private in-memory SQLite database behind the same engine code as
 * sqlite://, so both schemes share one set of semantics.
 */
#include "internal.h"

int ev_memory_open(void **impl, const ev_engine_ops **ops) {
    ev_str created_by = {(const uint8_t *)"c", 1, 1};
    return ev_sqlite_open(":memory:", 0, created_by, impl, ops);
}
