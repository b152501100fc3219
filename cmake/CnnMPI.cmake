# CnnMPI.cmake — MPI for `cnn train` across processes and machines (docs/mpi.md),
# included by cli/CMakeLists.txt. MPI belongs to the cnn program only: libcnn stays MPI-free.
# CNN_MPI (top-level cache variable): AUTO builds with MPI when it is found, ON requires it, OFF never.
if(CNN_MPI)
  if(CNN_MPI STREQUAL "AUTO")
    find_package(MPI COMPONENTS C QUIET)
  else()
    find_package(MPI COMPONENTS C REQUIRED)
  endif()
endif()

if(MPI_C_FOUND)
  message(STATUS "cnn: MPI found: `mpirun -np N cnn train` trains data-parallel (CNN_MPI=OFF to build without)")
  target_compile_definitions(cnn_cli PRIVATE CNN_HAVE_MPI=1)
  target_link_libraries(cnn_cli PRIVATE MPI::MPI_C)
elseif(CNN_MPI)
  message(STATUS "cnn: MPI not found, building without it: cnn train runs in one process "
                 "(install libopenmpi-dev and openmpi-bin for `mpirun -np N cnn train`)")
else()
  message(STATUS "cnn: building without MPI (CNN_MPI=OFF): cnn train runs in one process")
endif()

# The equivalence, resume and killed-rank test: needs MPI, mpirun, and the checkpoint comparer
# (cnn_ckpt_compare, defined by cli/CMakeLists.txt).
if(CNN_BUILD_TESTS AND MPI_C_FOUND)
  enable_testing()
  if(MPIEXEC_EXECUTABLE)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE CNN_MPIEXEC_VERSION ERROR_QUIET)
  endif()
  if(MPIEXEC_EXECUTABLE AND CNN_MPIEXEC_VERSION MATCHES "Open MPI|OpenRTE")
    add_test(NAME test_mpi COMMAND sh ${PROJECT_SOURCE_DIR}/tests/cli/test_mpi.sh $<TARGET_FILE:cnn_cli>
             $<TARGET_FILE:cnn_ckpt_compare> ${PROJECT_SOURCE_DIR}/tests/data ${MPIEXEC_EXECUTABLE})
    set_tests_properties(test_mpi PROPERTIES TIMEOUT 900)
  else()
    message(STATUS "cnn: no Open MPI mpirun found: test_mpi (written for Open MPI's mpirun) is not registered")
  endif()
endif()
