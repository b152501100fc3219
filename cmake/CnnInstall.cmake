# CnnInstall.cmake — what `cmake --install` puts where, in three components that are also the three
# Debian packages (cmake/CnnPackage.cmake): runtime (libcnn.so.N), dev (header, libcnn.so, libcnn.a,
# cnn.pc, the CMake package) and cli (the cnn command, its manual pages and bash completion).
# cnn.pc and the CMake package locate everything relative to themselves, so an install tree can be
# moved (cmake --install --prefix DIR into any folder) and still work.

install(FILES include/cnn.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(TARGETS cnn EXPORT cnnTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS cnn_static EXPORT cnnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# CMake package: cnnConfig.cmake finds what the static library links (zlib, OpenMP when built with it)
set(CNN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cnn)
set(CNN_CONFIG_OPENMP ${OpenMP_C_FOUND})
install(EXPORT cnnTargets NAMESPACE cnn:: DESTINATION ${CNN_CMAKE_DIR} COMPONENT dev)
include(CMakePackageConfigHelpers)
configure_package_config_file(cmake/cnnConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/cnnConfig.cmake
  INSTALL_DESTINATION ${CNN_CMAKE_DIR})
# 0.x: a minor version may change the API, so find_package(cnn 0.2) accepts 0.2.x only; from 1.0 on,
# any later 1.y (SameMajorVersion)
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(CNN_COMPAT SameMinorVersion)
else()
  set(CNN_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/cnnConfigVersion.cmake COMPATIBILITY ${CNN_COMPAT})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cnnConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/cnnConfigVersion.cmake
  DESTINATION ${CNN_CMAKE_DIR} COMPONENT dev)

# cnn.pc: prefix relative to the .pc file's own folder; Libs.private lists what a static link needs
file(RELATIVE_PATH CNN_PC_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" CNN_PC_PREFIX "${CNN_PC_PREFIX}")
set(CNN_PC_LIBS_PRIVATE "-lz -lprotobuf-c")
if(CNN_LIBM)
  string(APPEND CNN_PC_LIBS_PRIVATE " -lm")
endif()
if(OpenMP_C_FOUND)
  string(APPEND CNN_PC_LIBS_PRIVATE " ${OpenMP_C_FLAGS}") # gcc: -fopenmp links libgomp (and pthreads)
endif()
configure_file(cmake/cnn.pc.in ${CMAKE_CURRENT_BINARY_DIR}/cnn.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cnn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# the command's manual pages, from scdoc sources (Debian: scdoc); without scdoc the build skips them
find_program(CNN_SCDOC scdoc)
find_program(CNN_GZIP gzip)
if(CNN_BUILD_CLI AND CNN_SCDOC AND CNN_GZIP)
  set(CNN_MAN_PAGES)
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/man)
  foreach(page cnn.1 cnn-spec.5)
    string(REGEX MATCH "[0-9]$" section ${page})
    set(out ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
    add_custom_command(OUTPUT ${out}
      COMMAND sh -c "${CNN_SCDOC} < ${PROJECT_SOURCE_DIR}/man/${page}.scd | ${CNN_GZIP} -9n > ${out}"
      DEPENDS ${PROJECT_SOURCE_DIR}/man/${page}.scd
      COMMENT "scdoc: man/${page}.scd" VERBATIM)
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT cli)
    list(APPEND CNN_MAN_PAGES ${out})
  endforeach()
  add_custom_target(cnn_man ALL DEPENDS ${CNN_MAN_PAGES})
elseif(CNN_BUILD_CLI)
  message(STATUS "cnn: scdoc not found: building without the manual pages (apt-get install scdoc)")
endif()
if(CNN_BUILD_CLI)
  install(FILES completion/cnn.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    RENAME cnn COMPONENT cli)
endif()
