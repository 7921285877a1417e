# Properties of the end-to-end scenarios of install, package, Ansible and helper container.
# Those that install the package on this machine: one at a time, and only from the plain
# build (a package of the sanitizer build is no package).
foreach(name package_install ansible_role)
  if(TEST e2e.${name})
    set_tests_properties(e2e.${name} PROPERTIES LABELS no-asan RESOURCE_LOCK dpkg_volprep)
  endif()
endforeach()
# A real dockerd runs the helper container: once, in the plain build, as docker_map does.
if(TEST e2e.docker_helper)
  set_tests_properties(e2e.docker_helper PROPERTIES LABELS no-asan)
endif()
