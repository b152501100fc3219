# CnnPackage.cmake — Debian packages through CPack: `cpack --config build/CPackConfig.cmake` in a
# build configured with -DCMAKE_INSTALL_PREFIX=/usr writes, one per install component
# (cmake/CnnInstall.cmake):
#   libcnnN    the shared library libcnn.so.N (N = CNN_ABI_VERSION)
#   libcnn-dev cnn.h, libcnn.so, libcnn.a, cnn.pc and the CMake package; depends on libcnnN
#   cnn        the command, cnn(1), cnn-spec(5) and its bash completion; depends on libcnnN
# Each package's dependencies on system libraries (libc, libgomp, zlib, Open MPI for the command)
# are computed by dpkg-shlibdeps from the binaries it holds. scripts/deb_check.sh builds, installs,
# uses and removes them.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cnn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "cnn.c")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "convolutional neural networks on the CPU, with exact gradients")
set(CPACK_PACKAGE_CONTACT "cnn.c maintainers <cnn@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
if(CNN_BUILD_CLI)
  list(APPEND CPACK_COMPONENTS_ALL cli)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# the command links libcnn.so.N from this build: dpkg-shlibdeps looks for it here, and the explicit
# dependency on libcnnN below stands for it
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_CURRENT_BINARY_DIR})
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CNN_DEB_LIB libcnn${CNN_ABI_VERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${CNN_DEB_LIB})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "convolutional neural networks on the CPU: shared library
libcnn trains and runs convolutional neural networks on the CPU with PyTorch's semantics and
gradients checked against finite differences and PyTorch.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcnn-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${CNN_DEB_LIB} (= ${PROJECT_VERSION}), zlib1g-dev, libprotobuf-c-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION "convolutional neural networks on the CPU: development files
The header cnn.h, the static library, cnn.pc for pkg-config and the CMake package (find_package(cnn),
targets cnn::cnn and cnn::cnn_static).")
set(CPACK_DEBIAN_CLI_PACKAGE_NAME cnn)
set(CPACK_DEBIAN_CLI_PACKAGE_DEPENDS "${CNN_DEB_LIB} (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_CLI_DESCRIPTION "convolutional neural networks on the CPU: the cnn command
cnn trains, evaluates and runs convolutional neural networks described by a text file (cnn-spec(5)),
explains the backpropagation identities of a convolution in numbers, and benchmarks the kernels.")
include(CPack)
