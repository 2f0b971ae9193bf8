# Every dependency is a Debian 12 package installed by tools/setup.sh (docs/dependencies.md says
# why each one is here).
find_package(Threads REQUIRED)
find_package(Boost 1.81.0 EXACT REQUIRED COMPONENTS json url CONFIG)
find_package(RocksDB REQUIRED)
find_package(CapnProto REQUIRED)
find_package(spdlog REQUIRED)
find_package(PkgConfig REQUIRED)
# libpqxx 6.4 ships no CMake package.
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
# libpq itself, for its conninfo parser (pg/conninfo.cpp).
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
