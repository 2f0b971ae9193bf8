# xtrace_module(<name> SOURCES ... DEPS ... [PRIVATE_DEPS ...]) declares the library xtrace::<name>.
#
# Headers are included as "<module>/file.hpp". Each module publishes only its own folder: the
# build tree gets build/include/<name>/<name> -> <source>/<name>, and that directory is the
# module's sole PUBLIC include path. A module therefore sees the headers of exactly the modules it
# links, so the dependency rule of docs/architecture.md is enforced by the compiler, not by review.
function(xtrace_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(inc_root ${CMAKE_BINARY_DIR}/include/${name})
  file(MAKE_DIRECTORY ${inc_root})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${name} ${inc_root}/${name} SYMBOLIC)
  add_library(xtrace_${name} STATIC ${ARG_SOURCES})
  add_library(xtrace::${name} ALIAS xtrace_${name})
  target_include_directories(xtrace_${name} PUBLIC ${inc_root})
  target_link_libraries(xtrace_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  xtrace_set_warnings(xtrace_${name})
endfunction()
