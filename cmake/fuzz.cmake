# libFuzzer targets for every parser of untrusted input (-DVOLPREP_FUZZ=ON, with clang):
#   cmake -S . -B build-fuzz -DVOLPREP_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
#   cmake --build build-fuzz --target fuzz_all && fuzz/run.sh subid 600
# The whole library is built with coverage, ASan and UBSan; each target is fuzz/TARGET.cc,
# with its seed corpus in fuzz/corpus/TARGET. ctest -L fuzz runs each for a few seconds.
option(VOLPREP_FUZZ "Build the libFuzzer targets (clang; ASan and UBSan)" OFF)
set(VOLPREP_FUZZ_TARGETS subid daemon_json docker_version dockerd_cmdline uid_map id_spec
    chmod_spec exclude journal host_config compose bolt engine_answer)
if(VOLPREP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "VOLPREP_FUZZ needs clang: -DCMAKE_CXX_COMPILER=clang++")
  endif()
  set(VOLPREP_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
    -fsanitize-ignorelist=${CMAKE_SOURCE_DIR}/cmake/sanitize-ignore.txt)
  target_compile_options(volprep_core PUBLIC -fsanitize=fuzzer-no-link ${VOLPREP_FUZZ_FLAGS})
  target_link_options(volprep_core PUBLIC -fsanitize=address,undefined)
  add_custom_target(fuzz_all)
  foreach(name ${VOLPREP_FUZZ_TARGETS})
    add_executable(fuzz_${name} fuzz/${name}.cc)
    target_link_libraries(fuzz_${name} PRIVATE volprep_core)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fuzz_all fuzz_${name})
    add_test(NAME fuzz.${name} COMMAND ${CMAKE_SOURCE_DIR}/fuzz/run.sh ${name} 5)
    set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT 120
      ENVIRONMENT "VOLPREP_FUZZ_DIR=${CMAKE_BINARY_DIR}")
  endforeach()
  # --as and --map are parsed in the command-line code (the program's own objects).
  target_link_libraries(fuzz_id_spec PRIVATE volprep_cli)
endif()
