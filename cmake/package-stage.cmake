# CPack pre-build script: what the .deb holds beyond cmake --install, in the staged tree.
set(_root "${CPACK_TEMPORARY_INSTALL_DIRECTORY}${CPACK_PACKAGING_INSTALL_PREFIX}")
# The zsh completion goes to share/zsh/vendor-completions, where Debian's zsh reads packages'.
set(_from "${_root}/${CPACK_VOLPREP_ZSH_DIR}/_volprep")
if(EXISTS "${_from}")
  file(MAKE_DIRECTORY "${_root}/share/zsh/vendor-completions")
  file(RENAME "${_from}" "${_root}/share/zsh/vendor-completions/_volprep")
  file(REMOVE_RECURSE "${_root}/share/zsh/site-functions")
endif()
# Why the package may read the dpkg database itself (lintian would warn).
file(MAKE_DIRECTORY "${_root}/share/lintian/overrides")
file(COPY_FILE "${CPACK_VOLPREP_SOURCE_DIR}/packaging/lintian-overrides"
     "${_root}/share/lintian/overrides/volprep")
