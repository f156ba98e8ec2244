# Included through -DCMAKE_PROJECT_INCLUDE by run_dit_gpu.sh, which builds
# with the apps and the Check tests off (the device lacks Check and the
# apps' other dependencies): adds just test_dit_gpu and sla2-bench, once the
# top-level CMakeLists has defined the library (a deferred call).
function(sla2_gpu_dit_targets)
  include(${PROJECT_SOURCE_DIR}/tests/gpu/dit/CMakeLists.txt)
  include(${PROJECT_SOURCE_DIR}/apps/bench/CMakeLists.txt)
endfunction()
cmake_language(DEFER CALL sla2_gpu_dit_targets)
