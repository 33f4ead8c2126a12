# vigil_add_module(NAME SOURCES ... DEPS ... [PRIVATE_DEPS ...])
# One static library per folder under src/vigil/, target vigil_<NAME>, alias vigil::<NAME>.
# Headers are included as "vigil/<module>/<file>.h". DEPS only point down the module order
# in ARCHITECTURE.md.
function(vigil_add_module NAME)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(vigil_${NAME} STATIC ${ARG_SOURCES})
  add_library(vigil::${NAME} ALIAS vigil_${NAME})
  target_include_directories(vigil_${NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(vigil_${NAME} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} vigil_warnings)
endfunction()

# vigil_add_test(NAME SOURCES ... DEPS ... LABELS label [TIMEOUT seconds, default 300])
# A GoogleTest executable registered with ctest, with one label (a list would not survive
# gtest_discover_tests): "unit", "concurrency" for tests that exercise threads (CI runs
# those under ThreadSanitizer too), or "system" for long end-to-end runs (Release only).
function(vigil_add_test NAME)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${NAME} ${ARG_SOURCES})
  target_link_libraries(${NAME} PRIVATE ${ARG_DEPS} vigil_test_support GTest::gtest GTest::gtest_main vigil_warnings)
  gtest_discover_tests(${NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
