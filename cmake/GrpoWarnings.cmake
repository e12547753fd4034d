# Warning flags for the project's own targets (never for third-party headers, which come in as SYSTEM).
add_library(grpo_warnings INTERFACE)
target_compile_options(grpo_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wcast-align
                            -Wunused -Woverloaded-virtual -Wimplicit-fallthrough>)
if(GRPO_WERROR)
  target_compile_options(grpo_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
if(GRPO_SANITIZE)
  target_compile_options(grpo_warnings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(grpo_warnings INTERFACE -fsanitize=address,undefined)
endif()

# grpo_add_library(NAME SOURCES ...): a project library with the project's warnings.
function(grpo_add_library name)
  add_library(${name} STATIC ${ARGN})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE grpo_warnings)
endfunction()
