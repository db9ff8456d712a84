# Turn eventuali/schema/sqlite.sql into a C header (a byte array), so the
# library creates exactly the file format the reference engine reads.
file(READ "${SCHEMA}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "/* generated from eventuali/schema/sqlite.sql - do not edit */\n"
     "static const char ev_schema_sql[] = {${bytes} 0x00};\n")
