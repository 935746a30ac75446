# Installation (cmake --install) of the binary, manual, completion,
# systemd units and example config.
#
# Paths follow GNUInstallDirs under CMAKE_INSTALL_PREFIX. systemd looks
# for units, sysusers.d and tmpfiles.d files under both /usr/lib and
# /usr/local/lib, so those go to PREFIX/lib whatever the prefix is.
include(GNUInstallDirs)

set(CLIPMESH_DIST ${PROJECT_SOURCE_DIR}/dist)

install(TARGETS clipmesh RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Every man page in dist/man, by the section its file name ends in.
file(GLOB clipmesh_man_pages CONFIGURE_DEPENDS
     ${CLIPMESH_DIST}/man/*.[1-8])
foreach(page ${clipmesh_man_pages})
  string(REGEX REPLACE "^.*\\.([1-8])$" "\\1" section ${page})
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

install(FILES ${CLIPMESH_DIST}/bash-completion/clipmesh
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# A glob, so that the build notices when the file is added.
file(GLOB clipmesh_config_example CONFIGURE_DEPENDS
     ${CLIPMESH_DIST}/clipmesh.conf.example)
if(clipmesh_config_example)
  install(FILES ${clipmesh_config_example}
          DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

install(FILES ${CLIPMESH_DIST}/systemd/clipmesh.sysusers
        DESTINATION lib/sysusers.d RENAME clipmesh.conf)
install(FILES ${CLIPMESH_DIST}/systemd/clipmesh.tmpfiles
        DESTINATION lib/tmpfiles.d RENAME clipmesh.conf)

# The units name the binary by its absolute path, which is known only at
# install time: cpack installs with the prefix /usr whatever the build
# was configured with. So the units are generated when they are installed.
install(CODE "
  set(CLIPMESH_DIST \"${CLIPMESH_DIST}\")
  set(CLIPMESH_UNIT_STAGE \"${CMAKE_CURRENT_BINARY_DIR}/units\")
  set(CLIPMESH_INSTALL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
")
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/ClipmeshInstallUnits.cmake)
