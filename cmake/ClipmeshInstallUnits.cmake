# Install-time script (see ClipmeshInstall.cmake): writes the systemd
# units with the installed binary's absolute path and installs them into
# PREFIX/lib/systemd/system. file(INSTALL) honours DESTDIR and records the
# files in install_manifest.txt.
if(IS_ABSOLUTE "${CLIPMESH_INSTALL_BINDIR}")
  set(CLIPMESH_BINDIR "${CLIPMESH_INSTALL_BINDIR}")
else()
  set(CLIPMESH_BINDIR "${CMAKE_INSTALL_PREFIX}/${CLIPMESH_INSTALL_BINDIR}")
endif()

set(units "")
foreach(unit clipmesh-node.service clipmesh-mirror.service)
  configure_file(${CLIPMESH_DIST}/systemd/${unit}.in
                 ${CLIPMESH_UNIT_STAGE}/${unit} @ONLY)
  list(APPEND units ${CLIPMESH_UNIT_STAGE}/${unit})
endforeach()
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES ${units})
