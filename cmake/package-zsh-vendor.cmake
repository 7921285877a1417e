# CPack pre-build script: in the staged .deb tree, move the zsh completion from
# share/zsh/site-functions to share/zsh/vendor-completions, where Debian's zsh reads packages'.
set(_root "${CPACK_TEMPORARY_INSTALL_DIRECTORY}${CPACK_PACKAGING_INSTALL_PREFIX}")
set(_from "${_root}/${CPACK_VOLPREP_ZSH_DIR}/_volprep")
if(EXISTS "${_from}")
  file(MAKE_DIRECTORY "${_root}/share/zsh/vendor-completions")
  file(RENAME "${_from}" "${_root}/share/zsh/vendor-completions/_volprep")
  file(REMOVE_RECURSE "${_root}/share/zsh/site-functions")
endif()
