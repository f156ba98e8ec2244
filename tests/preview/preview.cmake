# sla2-preview under Xvfb: include(preview/preview.cmake) from tests/CMakeLists.txt.
# Runs where the app was built (SDL2 and SDL2_ttf found); skipped (77) without Xvfb or python3.
# With sla2-preview-asan built (SLA2_PREVIEW_ASAN, on by default with GCC and Clang) it also
# runs the fixture and Escape scripts under ASan and UBSan.
if(TARGET sla2-preview)
  add_test(NAME test_preview
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_preview.sh $<TARGET_FILE:sla2-preview> ${CMAKE_CURRENT_LIST_DIR}/../..)
  set_tests_properties(test_preview PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
  if(TARGET sla2-preview-asan)
    set_tests_properties(test_preview PROPERTIES ENVIRONMENT "SLA2_PREVIEW_ASAN=$<TARGET_FILE:sla2-preview-asan>")
  endif()
endif()
