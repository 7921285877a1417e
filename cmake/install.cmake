# cmake --install: the binary, the man page and the bash and zsh completions, in the standard
# places under CMAKE_INSTALL_PREFIX (DESTDIR is honoured, as by every install rule).
include(GNUInstallDirs)

# bash-completion loads completions/volprep on first use from $XDG_DATA_DIRS (so from
# /usr/local/share too); its pkg-config file names the directory for its own prefix.
set(_bash_dir "${CMAKE_INSTALL_DATADIR}/bash-completion/completions")
pkg_get_variable(_bash_pc_dir bash-completion completionsdir)
pkg_get_variable(_bash_pc_prefix bash-completion prefix)
if(_bash_pc_dir AND _bash_pc_prefix AND _bash_pc_dir MATCHES "^${_bash_pc_prefix}/(.*)$")
  set(_bash_dir "${CMAKE_MATCH_1}")  # relative: under our prefix, not bash-completion's
endif()
set(VOLPREP_BASH_COMPLETION_DIR "${_bash_dir}" CACHE STRING
    "Where the bash completion goes (relative: under CMAKE_INSTALL_PREFIX)")
# zsh's own functions dir for installs by hand (/usr/local/share/zsh/site-functions is on
# Debian's fpath); the .deb moves it to vendor-completions, where Debian's zsh reads packages'.
set(VOLPREP_ZSH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/zsh/site-functions" CACHE STRING
    "Where the zsh completion goes (relative: under CMAKE_INSTALL_PREFIX)")

# The man page and changelog compressed as Debian wants them (-n: reproducible), for both.
find_program(GZIP gzip REQUIRED)
add_custom_command(OUTPUT volprep.1.gz
  COMMAND ${GZIP} -9n -c ${CMAKE_SOURCE_DIR}/man/volprep.1 > volprep.1.gz
  DEPENDS man/volprep.1 VERBATIM)
add_custom_command(OUTPUT changelog.gz
  COMMAND ${GZIP} -9n -c ${CMAKE_SOURCE_DIR}/packaging/changelog > changelog.gz
  DEPENDS packaging/changelog VERBATIM)
add_custom_target(volprep_docs ALL DEPENDS volprep.1.gz changelog.gz)

install(TARGETS volprep RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_BINARY_DIR}/volprep.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES completions/volprep.bash DESTINATION ${VOLPREP_BASH_COMPLETION_DIR} RENAME volprep)
install(FILES completions/_volprep DESTINATION ${VOLPREP_ZSH_COMPLETION_DIR})
install(FILES packaging/copyright ${CMAKE_BINARY_DIR}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
