# Turn eventuali/schema/sqlite.sql (or, with -DVAR=ev_chain_sql, sqlite_chain.sql)
# into a C header (a byte array), so the library creates exactly the file
# format the reference engine reads.
if(NOT VAR)
  set(VAR ev_schema_sql)
endif()
get_filename_component(name "${SCHEMA}" NAME)
file(READ "${SCHEMA}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "/* generated from eventuali/schema/${name} - do not edit */\n"
     "static const char ${VAR}[] = {${bytes} 0x00};\n")
