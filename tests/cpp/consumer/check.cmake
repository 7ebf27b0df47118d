# Configures, builds and runs the consumer project; run with cmake -P (see ../CMakeLists.txt).
# MODE=add_subdirectory: the consumer adds the checkout with add_subdirectory().
# MODE=find_package: the checkout is built and installed into a prefix first.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${out}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(common -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
if(MODE STREQUAL "find_package")
  set(prefix ${BINARY_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${REPO_ROOT} -B ${BINARY_DIR}/library ${common}
      -DMTHREAD_BUILD_TESTS=OFF -DMTHREAD_BUILD_EXAMPLES=OFF -DMTHREAD_BUILD_PYTHON=OFF
      -DMTHREAD_BUILD_BENCH=OFF)
  run(${CMAKE_COMMAND} --build ${BINARY_DIR}/library -j2)
  file(REMOVE_RECURSE ${prefix})
  run(${CMAKE_COMMAND} --install ${BINARY_DIR}/library --prefix ${prefix})
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR}/consumer ${common}
      -DMTHREAD_CONSUMER_MODE=find_package -DCMAKE_PREFIX_PATH=${prefix})
else()
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR}/consumer ${common}
      -DMTHREAD_CONSUMER_MODE=add_subdirectory -DMTHREAD_ROOT=${REPO_ROOT})
endif()
run(${CMAKE_COMMAND} --build ${BINARY_DIR}/consumer -j2)
run(${BINARY_DIR}/consumer/consumer)
message(STATUS "${last_output}")
