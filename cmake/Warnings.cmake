# kvmt_set_warnings(target): the warning set every kvmt target is built with.
function(kvmt_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                         -Wnon-virtual-dtor -Wno-unused-parameter)
  if(KVMT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
