# Parity of the SDK's CPU operator with the independent PyTorch reference
# (train/sla2/attention.py) on the fixtures train/make_operator_fixtures.py
# writes to tests/fixtures/operator/. Included from tests/CMakeLists.txt.
add_executable(test_torch_parity
  ${CMAKE_CURRENT_LIST_DIR}/test_torch_parity.c
  ${CMAKE_CURRENT_LIST_DIR}/test_util.c)
target_link_libraries(test_torch_parity PRIVATE sla2_static PkgConfig::CHECK m)
target_include_directories(test_torch_parity PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/sdk/src)
target_compile_definitions(test_torch_parity PRIVATE
  _POSIX_C_SOURCE=200809L
  SLA2_OPERATOR_FIXTURE_DIR="${CMAKE_CURRENT_LIST_DIR}/fixtures/operator")
target_compile_options(test_torch_parity PRIVATE -Wall -Wextra -Wno-unused-parameter)
set_target_properties(test_torch_parity PROPERTIES C_STANDARD 11)
add_test(NAME test_torch_parity COMMAND test_torch_parity)
set_tests_properties(test_torch_parity PROPERTIES ENVIRONMENT "CK_DEFAULT_TIMEOUT=600")
