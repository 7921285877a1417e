# cpack -G DEB (in the build directory): volprep_VERSION_ARCH.deb with the binary, man page,
# completions, copyright and changelog. Depends are computed by dpkg-shlibdeps (dpkg-dev) from
# the libraries the binary links, never typed by hand.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME volprep)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "volprep maintainers <maintainers@users.noreply.b-seed-ca568233.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "prepare volume trees for containers in a user namespace")
# The extended description (CPack puts the summary before it as the synopsis).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "volprep reads the host's active user-namespace remapping (Docker's
userns-remap, rootless Docker and Podman) and gives a container user a
bind-mounted volume tree: by owner (chown) or by POSIX ACL, in parallel, by
file descriptor only, with a dry run that shows every change and a journal
to roll a run back.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "docker.io | podman")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# The staged tree made Debian's: zsh's vendor-completions, lintian overrides.
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/package-stage.cmake)
set(CPACK_VOLPREP_ZSH_DIR "${VOLPREP_ZSH_COMPLETION_DIR}")
set(CPACK_VOLPREP_SOURCE_DIR "${CMAKE_SOURCE_DIR}")
include(CPack)

