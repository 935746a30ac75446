# The Debian package: cpack -G DEB in a build folder packs what the
# install rules of ClipmeshInstall.cmake install, under the prefix /usr.
# Build it from an optimised build without sanitizers, or the package
# depends on the sanitizers' run-time libraries.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME clipmesh)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "clipmesh maintainers <maintainers@clipmesh.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "peer-to-peer sync of signed creator review clips")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# CPack puts the summary on the Description line and indents this text.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "clipmesh keeps a verified, deduplicated feed of short review videos
and photos that creators sign with Ed25519 keys. Nodes exchange clips
over CURVE-encrypted ZeroMQ and store them in LMDB. The package has the
clipmesh command, its manual, bash completion, and systemd units for a
creator node and for a mirror, which run as the system user clipmesh.")
# dpkg-shlibdeps (from dpkg-dev) derives the library dependencies.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The postinst creates the user with systemd-sysusers where systemd is
# installed, else with adduser.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser | systemd-sysusers")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CLIPMESH_DIST}/debian/postinst
    ${CLIPMESH_DIST}/debian/prerm
    ${CLIPMESH_DIST}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
