# Sanitizer and fuzzing builds. Both instrument every target of the build (module libraries,
# tools, tests, the server), so they live in build directories of their own (build-asan,
# build-tsan, build-fuzz; see tools/test.sh and docs/operations.md).
#
# XTRACE_SANITIZE: a comma-separated list of `address`, `undefined`, `thread`; empty (the default)
# builds without sanitizers. `thread` cannot be combined with `address`. UBSan never recovers
# (-fno-sanitize-recover=all): the first finding ends the process, so no test can pass over it.
#
# XTRACE_FUZZ: builds the libFuzzer harnesses of tests/fuzz. Needs clang; every library is then
# compiled with -fsanitize=fuzzer-no-link so the harnesses see coverage inside the module code.
set(XTRACE_SANITIZE "" CACHE STRING
    "Sanitizers for every target: address,undefined or thread (empty: none)")
option(XTRACE_FUZZ "Build the libFuzzer harnesses of tests/fuzz (clang only)" OFF)

if(XTRACE_SANITIZE)
  string(REPLACE "," ";" xtrace_sanitizers "${XTRACE_SANITIZE}")
  foreach(s IN LISTS xtrace_sanitizers)
    if(NOT s MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "XTRACE_SANITIZE: unknown sanitizer '${s}' "
                          "(allowed: address, undefined, thread)")
    endif()
  endforeach()
  if("thread" IN_LIST xtrace_sanitizers AND "address" IN_LIST xtrace_sanitizers)
    message(FATAL_ERROR "XTRACE_SANITIZE: thread and address cannot be combined")
  endif()
  # Frame pointers give complete stacks in reports at little cost.
  add_compile_options(-fsanitize=${XTRACE_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${XTRACE_SANITIZE})
  if("undefined" IN_LIST xtrace_sanitizers)
    add_compile_options(-fno-sanitize-recover=all)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # The instrumentation changes what gcc 12 can prove about inlined code: it reports
    # maybe-uninitialized inside Boost.Beast's parser (a boost::optional it cannot follow), which
    # the normal build, with the same warnings as errors, does not.
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
  if("thread" IN_LIST xtrace_sanitizers AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # gcc's TSan does not model std::atomic_thread_fence and warns where it is used, as Boost.Asio's
    # headers do (handler fences, reference counts). Our own code uses no fences; a report that
    # only a fence would explain shows up inside Asio's frames, where it can be judged.
    add_compile_options(-Wno-tsan)
  endif()
endif()

if(XTRACE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "XTRACE_FUZZ needs clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
