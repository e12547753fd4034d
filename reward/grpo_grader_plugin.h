/* The C ABI between grpo-cpp and grader plug-ins: shared libraries, built separately from the trainer in any language
 * that can export a C function, that score completions. This header is the whole contract; it is plain C (C89 types,
 * no C++), so a plug-in needs nothing else from this project to build.
 *
 * A plug-in exports one function, grpo_grader_plugin(), that returns a static descriptor (GrpoGraderPluginV1): a name,
 * a description, flags, and three functions, create(), destroy() and grade(). The trainer loads the library from the
 * path its config names (reward.graders.plugin.path), checks the descriptor, calls create() once with the config's
 * JSON text, then grade() once per completion, and destroy() at the end. See examples/plugin_grader/keyword_grader.c.
 *
 * Versioning. GRPO_GRADER_ABI_VERSION changes only for incompatible changes, and then the descriptor type gets a new
 * name (GrpoGraderPluginV2...). The host passes the newest version it speaks to grpo_grader_plugin(); the plug-in
 * returns a descriptor for a version it implements that is not newer (a plug-in may implement several and choose), or
 * NULL when it has none. Compatible additions within a version only append members to the end of a struct; every
 * extensible struct starts with its struct_size so that the side reading it can tell which members the other side
 * knows about. Members not known to the writer are absent; unknown flag bits must be zero.
 *
 * Strings. Every string crossing a grade() call is a (pointer, size) pair: not NUL-terminated, may contain NUL bytes,
 * and is arbitrary bytes (completions are whatever the model wrote; nothing is guaranteed to be valid UTF-8). The
 * host never passes a NULL pointer, even for an empty string.
 *
 * Ownership and lifetime.
 *  - The descriptor and the strings it points to are the plug-in's and must stay valid while the library is loaded
 *    (static storage in practice). The host never writes to them.
 *  - create() returns an opaque state owned by the plug-in until destroy() takes it back. The host calls destroy()
 *    once per state that create() returned, and never uses the state after it; the exception is a worker process
 *    that crashed or was killed for overrunning its time limit, whose state simply ends with the process (so a
 *    plug-in must not rely on destroy() for anything outside its process, such as removing files).
 *  - A GrpoGradeInput and everything it points to belong to the host and are valid only during the grade() call.
 *  - A GrpoGradeOutput belongs to the host. The plug-in reports its result by setting `score` and by calling the
 *    output's functions (set_extracted, set_reason, add_component), which copy the bytes before they return: the
 *    plug-in keeps ownership of what it passes and may free or reuse it right away (a stack buffer is fine). The
 *    output and its functions may be used only during the grade() call that received them, from any thread, but not
 *    from two threads at once.
 *
 * Threads. create() and destroy() are never called concurrently with anything else on the same state. grade() is
 * called concurrently on one state only when the descriptor sets GRPO_GRADER_FLAG_THREAD_SAFE; otherwise the host
 * serializes the calls. A process may hold several states of one plug-in at once (e.g. two graders in one config),
 * so keep per-grader data in the state, not in globals.
 *
 * Failure. grade() reports that it cannot score a completion (a malformed reference, say) with
 * GRPO_GRADE_CANNOT_SCORE and a reason, and its own failures with GRPO_GRADE_ERROR and a reason; the trainer leaves
 * such samples out of the group's baseline rather than counting them as zero. The host also treats as "cannot score",
 * naming the plug-in in the reason, any call that returns an unknown status, a score that is NaN, infinite or outside
 * [-GRPO_GRADER_MAX_ABS_SCORE, GRPO_GRADER_MAX_ABS_SCORE], a string pointer that is NULL with a non-zero size, a string
 * longer than its limit below, or an invalid component. By default the host runs the plug-in in a separate worker
 * process, so a plug-in that crashes, aborts, exits or hangs costs only the samples in flight, each marked "cannot
 * score" with what happened; the host then starts a fresh worker (create() again) for the next samples. Plug-ins must
 * not let C++ exceptions escape through this ABI; a host that catches one reports the sample as "cannot score".
 *
 * Environment. The worker is a fork of the trainer: it shares the trainer's stdout and stderr (anything the plug-in
 * prints lands in the trainer's output), its working directory and environment; stdin is /dev/null. It is not a
 * security sandbox: a plug-in is trusted code that can do whatever the user running the trainer can. */
#ifndef GRPO_GRADER_PLUGIN_H_
#define GRPO_GRADER_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define GRPO_GRADER_ABI_VERSION 1u

/* The one symbol a plug-in exports, and its type. */
#define GRPO_GRADER_PLUGIN_ENTRY "grpo_grader_plugin"

/* Marks the entry point as exported even when the plug-in is built with -fvisibility=hidden. */
#if defined(_WIN32)
#define GRPO_GRADER_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define GRPO_GRADER_EXPORT __attribute__((visibility("default")))
#else
#define GRPO_GRADER_EXPORT
#endif

/* Limits the host enforces on what a plug-in returns; past them the sample is "cannot score". */
#define GRPO_GRADER_MAX_NAME_BYTES 64u            /* descriptor name: 1..64 bytes of [A-Za-z0-9_.-] */
#define GRPO_GRADER_MAX_DESCRIPTION_BYTES 1024u   /* descriptor description */
#define GRPO_GRADER_MAX_TEXT_BYTES (1u << 20)     /* each of extracted and reason: 1 MiB */
#define GRPO_GRADER_MAX_COMPONENTS 64u            /* components per result */
#define GRPO_GRADER_MAX_COMPONENT_NAME_BYTES 128u /* component name: 1..128 bytes, no control characters */
#define GRPO_GRADER_MAX_ABS_SCORE 1e6             /* scores and component scores are within [-1e6, 1e6] */

/* What grade() returns. */
#define GRPO_GRADE_OK 0           /* scored: `score` is set; extracted, reason and components are optional */
#define GRPO_GRADE_CANNOT_SCORE 1 /* this completion cannot be scored (bad reference...); set a reason saying why */
#define GRPO_GRADE_ERROR 2        /* the plug-in itself failed (out of memory...); set a reason saying what */

/* Descriptor flags. */
#define GRPO_GRADER_FLAG_THREAD_SAFE 1u /* grade() may be called from several threads at once on one state */

/* One completion to grade. Host-owned; valid during the grade() call only. */
typedef struct GrpoGradeInput {
  uint32_t struct_size; /* sizeof(GrpoGradeInput) as the host knows it; members past it are absent */
  uint32_t reserved;    /* zero */
  const char* prompt;   /* the prompt the model saw */
  size_t prompt_size;
  const char* completion; /* the model's text only, without the prompt */
  size_t completion_size;
  const char* reference; /* the dataset row's expected answer, in whatever form the grader understands */
  size_t reference_size;
  const char* metadata; /* the dataset row's other fields as a JSON object text, or empty */
  size_t metadata_size;
  /* How long the host will wait for this call, in milliseconds from its start, or -1 for no limit. Plug-ins that run
   * programs or call out should bound their work by it and return GRPO_GRADE_CANNOT_SCORE rather than answer late:
   * a worker that overruns it is killed. */
  int64_t time_limit_ms;
} GrpoGradeInput;

/* Where grade() writes its result. Host-owned; valid during the grade() call only. The host sets `score` to NaN
 * before the call, so a GRPO_GRADE_OK that forgets to set it is caught. The functions copy what they are given and
 * return 0, or return non-zero when they refuse it (NULL data with a non-zero size, over a limit, an invalid or
 * duplicate component); a refusal already makes the sample "cannot score", whatever grade() returns. */
typedef struct GrpoGradeOutput {
  uint32_t struct_size; /* sizeof(GrpoGradeOutput) as the host knows it; members past it are absent */
  uint32_t reserved;    /* zero */
  double score;         /* set by the plug-in on GRPO_GRADE_OK: the reward, e.g. in [0, 1] */
  void* host;           /* opaque; pass it as the first argument of the functions below */
  /* What the grader read from the completion (e.g. the final answer), for logs. At most GRPO_GRADER_MAX_TEXT_BYTES. */
  int (*set_extracted)(void* host, const char* data, size_t size);
  /* Why the score is below full, why it cannot score, or what failed. At most GRPO_GRADER_MAX_TEXT_BYTES. */
  int (*set_reason)(void* host, const char* data, size_t size);
  /* A named part of the score, logged as a metric (e.g. "keywords_found", 0.5). Names are 1 to
   * GRPO_GRADER_MAX_COMPONENT_NAME_BYTES bytes without control characters and unique within one result; scores are
   * finite and within GRPO_GRADER_MAX_ABS_SCORE; at most GRPO_GRADER_MAX_COMPONENTS per result. */
  int (*add_component)(void* host, const char* name, size_t name_size, double score);
} GrpoGradeOutput;

/* The descriptor grpo_grader_plugin() returns for ABI version 1. */
typedef struct GrpoGraderPluginV1 {
  uint32_t abi_version; /* GRPO_GRADER_ABI_VERSION the plug-in was built against: 1 */
  uint32_t struct_size; /* sizeof(GrpoGraderPluginV1) */
  /* NUL-terminated. name: 1 to GRPO_GRADER_MAX_NAME_BYTES bytes of [A-Za-z0-9_.-], shown in logs and reasons.
   * description: one line of printable ASCII for humans, at most GRPO_GRADER_MAX_DESCRIPTION_BYTES; may be NULL. */
  const char* name;
  const char* description;
  uint32_t flags;    /* GRPO_GRADER_FLAG_* */
  uint32_t reserved; /* zero */

  /* A new grader state configured by `config_json` (the config's JSON text, `config_size` bytes; the host also puts
   * a NUL at config_json[config_size] for parsers that want one; "{}" when the config gives none). On failure returns
   * NULL after writing a NUL-terminated message for the user into error_buf (error_cap bytes, at least 256), saying
   * what is wrong with the config and how to fix it. */
  void* (*create)(const char* config_json, size_t config_size, char* error_buf, size_t error_cap);
  /* Frees a state that create() returned. */
  void (*destroy)(void* state);
  /* Grades one completion: returns GRPO_GRADE_OK, GRPO_GRADE_CANNOT_SCORE or GRPO_GRADE_ERROR, reporting through
   * `output` as described above. */
  int (*grade)(void* state, const GrpoGradeInput* input, GrpoGradeOutput* output);
} GrpoGraderPluginV1;

/* The entry point: returns the descriptor for the newest ABI version the plug-in implements that is not newer than
 * `host_abi_version`, or NULL when it implements none of them. It may be called more than once (once per grader that
 * uses the plug-in) and must return the same descriptor each time. A plug-in defines it as
 *   GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t host_abi_version) { ... return &descriptor; }
 * The returned pointer is to a struct starting with (uint32_t abi_version, uint32_t struct_size), e.g. a
 * GrpoGraderPluginV1. */
typedef const void* (*GrpoGraderPluginEntry)(uint32_t host_abi_version);

/* Declared here so that a plug-in that defines it with another signature fails to compile. */
GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t host_abi_version);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GRPO_GRADER_PLUGIN_H_ */
