# kvmt_set_warnings(target): the warning set every kvmt target is built with.
function(kvmt_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wnon-virtual-dtor
                         -Wno-unused-parameter)
  # gcc's spelling; clang (sanitizer and fuzzing builds) has no -Wshadow=local.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wshadow=local)
  endif()
  if(KVMT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
