# Third-party dependencies. Debian packages (scripts/setup installs them) and LibTorch, found through
# Torch_DIR / CMAKE_PREFIX_PATH (scripts/setup points it at the `torch` wheel in .venv).
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Boost 1.74 REQUIRED)
# Tokenizers: PCRE2 for the Unicode-aware pre-tokenizer regexes (\p{L}, look-ahead), ICU for NFC/NFKC normalizers.
find_path(PCRE2_INCLUDE_DIR pcre2.h REQUIRED)
find_library(PCRE2_LIBRARY pcre2-8 REQUIRED)
add_library(grpo_pcre2 INTERFACE IMPORTED)
target_include_directories(grpo_pcre2 INTERFACE ${PCRE2_INCLUDE_DIR})
target_link_libraries(grpo_pcre2 INTERFACE ${PCRE2_LIBRARY})
find_package(ICU 70 REQUIRED COMPONENTS uc data)
# Data parallelism: LibTorch has c10d's Gloo backend built in, but its ProcessGroupGloo.hpp includes Gloo's headers,
# which the wheel does not ship; Debian's libgloo-dev has them (only the declarations are used, nothing is linked).
find_path(GLOO_INCLUDE_DIR gloo/rendezvous/store.h REQUIRED)

# LibTorch. A CUDA build of LibTorch looks for a CUDA toolkit; restrict the architectures we compile our own
# kernels for so that the build stays quick (A100, H100). Users with other GPUs set TORCH_CUDA_ARCH_LIST.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;9.0")
endif()
if(GRPO_CUDA STREQUAL "OFF")
  set(USE_CUDA OFF)
endif()
# CMake 3.25 knows no C++20 dialect flag for nvcc, and Torch sets CMAKE_CUDA_STANDARD to the C++ standard when unset.
set(CMAKE_CUDA_STANDARD 17)
find_package(Torch REQUIRED)

# The torch wheel's include folder also carries its private copies of protobuf and fmt headers (other versions than
# the Debian libraries we compile and link against); through LibTorch's include path they would shadow ours. Expose
# that folder without them: a mirror of symbolic links to every entry except google/ and fmt/. <torch/torch.h> itself
# includes neither.
set(_grpo_torch_mirror ${PROJECT_BINARY_DIR}/torch_include)
foreach(_target torch torch_cpu torch_cuda c10 c10_cuda torch_library)
  if(NOT TARGET ${_target})
    continue()
  endif()
  get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _dirs)
    continue()
  endif()
  set(_clean_dirs)
  foreach(_dir IN LISTS _dirs)
    if(EXISTS "${_dir}/google/protobuf" OR EXISTS "${_dir}/fmt/format.h")
      file(MAKE_DIRECTORY ${_grpo_torch_mirror})
      file(GLOB _entries RELATIVE "${_dir}" "${_dir}/*")
      foreach(_entry IN LISTS _entries)
        if(NOT _entry STREQUAL "google" AND NOT _entry STREQUAL "fmt" AND NOT EXISTS "${_grpo_torch_mirror}/${_entry}")
          file(CREATE_LINK "${_dir}/${_entry}" "${_grpo_torch_mirror}/${_entry}" SYMBOLIC)
        endif()
      endforeach()
      list(APPEND _clean_dirs ${_grpo_torch_mirror})
    else()
      list(APPEND _clean_dirs "${_dir}")
    endif()
  endforeach()
  set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_clean_dirs}")
endforeach()
# TorchConfig appends its flags to CMAKE_CXX_FLAGS (ABI macro); keep them but apply them per target instead.
# libtorch.so exports its own copies of some std::filesystem functions (pytorch/pytorch#133437), and
# std::filesystem::remove_all resolved there crashes. Linking libstdc++ ahead of LibTorch makes the dynamic linker
# bind those symbols to the real libstdc++.
add_library(grpo_torch INTERFACE)
target_link_libraries(grpo_torch INTERFACE "-Wl,--no-as-needed" stdc++ "-Wl,--as-needed" ${TORCH_LIBRARIES})
set(GRPO_TORCH_LIBRARIES grpo_torch)

set(GRPO_HAVE_CUDA OFF)
if(NOT GRPO_CUDA STREQUAL "OFF")
  find_program(GRPO_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
  if(TARGET torch_cuda OR TARGET c10_cuda)
    set(_torch_has_cuda ON)
  else()
    set(_torch_has_cuda OFF)
  endif()
  if(_torch_has_cuda AND GRPO_NVCC)
    set(CMAKE_CUDA_COMPILER ${GRPO_NVCC})
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
    enable_language(CUDA)
    set(GRPO_HAVE_CUDA ON)
  elseif(GRPO_CUDA STREQUAL "ON")
    message(FATAL_ERROR "GRPO_CUDA=ON but LibTorch has CUDA=${_torch_has_cuda} and nvcc='${GRPO_NVCC}'")
  endif()
endif()
message(STATUS "grpo-cpp: CUDA kernels ${GRPO_HAVE_CUDA}")

# grpo_c10d_source(TARGET SOURCE): SOURCE (of TARGET, in the calling directory) creates c10d process groups: Gloo's
# headers, and NCCL's where LibTorch has CUDA (the wheel's libtorch_cuda has ProcessGroupNCCL; its header wants the
# toolkit's nccl.h). ProcessGroupGloo.hpp declares its class only when the build says LibTorch has Gloo (the wheel
# does); GRPO_HAVE_NCCL tells our code that ProcessGroupNCCL is there.
if(GRPO_HAVE_CUDA)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS /usr/local/cuda/include ENV CUDA_HOME PATH_SUFFIXES include)
endif()
function(grpo_c10d_source target source)
  target_include_directories(${target} SYSTEM PRIVATE ${GLOO_INCLUDE_DIR})
  set_property(SOURCE ${source} APPEND PROPERTY COMPILE_DEFINITIONS USE_C10D_GLOO)
  if(GRPO_HAVE_CUDA AND NCCL_INCLUDE_DIR)
    target_include_directories(${target} SYSTEM PRIVATE ${NCCL_INCLUDE_DIR})
    set_property(SOURCE ${source} APPEND PROPERTY COMPILE_DEFINITIONS USE_C10D_NCCL GRPO_HAVE_NCCL)
  endif()
endfunction()
