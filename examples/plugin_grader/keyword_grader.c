/* An example grader plug-in in plain C: the completion scores 1 when it contains every keyword that the reference
 * lists (comma-separated, e.g. "paris, france"), else 0. It shows the whole C ABI of reward/grpo_grader_plugin.h:
 * the exported entry point, a config parsed in create() with a helpful error, per-grader state, binary-safe strings,
 * "cannot score" for a reference it cannot use, and a result reported through the host's output functions.
 *
 * Config (JSON object; every option may be left out):
 *   "case_sensitive": false   match keywords exactly (true) or ignoring ASCII case (false, the default)
 *   "partial_credit": false   score the fraction of keywords found (true) instead of all-or-nothing (false)
 *
 * Build: see README.md next to this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpo_grader_plugin.h"

typedef struct KeywordGrader {
  int case_sensitive;
  int partial_credit;
} KeywordGrader;

/* ---- Config: a hand-written reader for the flat object of booleans this grader takes (it is an example; a real
 * plug-in would use a JSON library). */

typedef struct ConfigReader {
  const char* at;
  const char* end;
  char* error;
  size_t error_cap;
} ConfigReader;

static void skip_space(ConfigReader* reader) {
  while (reader->at < reader->end &&
         (*reader->at == ' ' || *reader->at == '\t' || *reader->at == '\n' || *reader->at == '\r')) {
    ++reader->at;
  }
}

/* Reads `"name"` into key (NUL-terminated, cut to key_cap - 1 bytes). Escapes are not needed for our option names. */
static int read_key(ConfigReader* reader, char* key, size_t key_cap) {
  size_t size = 0;
  if (reader->at >= reader->end || *reader->at != '"') {
    snprintf(reader->error, reader->error_cap, "keyword grader config: expected an option name in double quotes");
    return 0;
  }
  ++reader->at;
  while (reader->at < reader->end && *reader->at != '"') {
    if (*reader->at == '\\') {
      snprintf(reader->error, reader->error_cap, "keyword grader config: option names have no escapes");
      return 0;
    }
    if (size + 1 < key_cap) key[size++] = *reader->at;
    ++reader->at;
  }
  key[size] = '\0';
  if (reader->at >= reader->end) {
    snprintf(reader->error, reader->error_cap, "keyword grader config: unterminated option name \"%s", key);
    return 0;
  }
  ++reader->at;
  return 1;
}

static int read_bool(ConfigReader* reader, const char* key, int* value) {
  const size_t left = (size_t)(reader->end - reader->at);
  if (left >= 4 && memcmp(reader->at, "true", 4) == 0) {
    *value = 1;
    reader->at += 4;
    return 1;
  }
  if (left >= 5 && memcmp(reader->at, "false", 5) == 0) {
    *value = 0;
    reader->at += 5;
    return 1;
  }
  snprintf(reader->error, reader->error_cap, "keyword grader config: option \"%s\" must be true or false", key);
  return 0;
}

static int read_config(ConfigReader* reader, KeywordGrader* grader) {
  char key[64];
  skip_space(reader);
  if (reader->at >= reader->end || *reader->at != '{') {
    snprintf(reader->error, reader->error_cap,
             "keyword grader config: expected a JSON object such as "
             "{\"case_sensitive\": false}");
    return 0;
  }
  ++reader->at;
  skip_space(reader);
  if (reader->at < reader->end && *reader->at == '}') {
    ++reader->at;
  } else {
    for (;;) {
      int* target = NULL;
      skip_space(reader);
      if (!read_key(reader, key, sizeof key)) return 0;
      if (strcmp(key, "case_sensitive") == 0) {
        target = &grader->case_sensitive;
      } else if (strcmp(key, "partial_credit") == 0) {
        target = &grader->partial_credit;
      } else {
        snprintf(reader->error, reader->error_cap,
                 "keyword grader config: unknown option \"%s\"; the options are case_sensitive and partial_credit",
                 key);
        return 0;
      }
      skip_space(reader);
      if (reader->at >= reader->end || *reader->at != ':') {
        snprintf(reader->error, reader->error_cap, "keyword grader config: expected ':' after \"%s\"", key);
        return 0;
      }
      ++reader->at;
      skip_space(reader);
      if (!read_bool(reader, key, target)) return 0;
      skip_space(reader);
      if (reader->at < reader->end && *reader->at == ',') {
        ++reader->at;
        continue;
      }
      if (reader->at < reader->end && *reader->at == '}') {
        ++reader->at;
        break;
      }
      snprintf(reader->error, reader->error_cap, "keyword grader config: expected ',' or '}' after \"%s\"", key);
      return 0;
    }
  }
  skip_space(reader);
  if (reader->at != reader->end) {
    snprintf(reader->error, reader->error_cap, "keyword grader config: unexpected text after the object");
    return 0;
  }
  return 1;
}

static void* keyword_create(const char* config_json, size_t config_size, char* error_buf, size_t error_cap) {
  ConfigReader reader;
  KeywordGrader* grader = (KeywordGrader*)calloc(1, sizeof *grader);
  if (grader == NULL) {
    snprintf(error_buf, error_cap, "keyword grader: out of memory");
    return NULL;
  }
  reader.at = config_json;
  reader.end = config_json + config_size;
  reader.error = error_buf;
  reader.error_cap = error_cap;
  if (!read_config(&reader, grader)) {
    free(grader);
    return NULL;
  }
  return grader;
}

static void keyword_destroy(void* state) { free(state); }

/* ---- Grading. Strings are (pointer, size): not NUL-terminated, and a completion may contain NUL bytes, so nothing
 * below uses the str* functions on them. */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static char fold(char c, int case_sensitive) { return (!case_sensitive && c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

static int contains(const char* text, size_t text_size, const char* word, size_t word_size, int case_sensitive) {
  size_t start;
  size_t i;
  if (word_size > text_size) return 0;
  for (start = 0; start + word_size <= text_size; ++start) {
    for (i = 0; i < word_size && fold(text[start + i], case_sensitive) == fold(word[i], case_sensitive); ++i) {
    }
    if (i == word_size) return 1;
  }
  return 0;
}

/* Appends `word` to a ", "-separated list in `list` (capacity checked by the caller's sizing). */
static void append_word(char* list, size_t* size, const char* word, size_t word_size) {
  if (*size > 0) {
    memcpy(list + *size, ", ", 2);
    *size += 2;
  }
  memcpy(list + *size, word, word_size);
  *size += word_size;
}

static int keyword_grade(void* state, const GrpoGradeInput* input, GrpoGradeOutput* output) {
  const KeywordGrader* grader = (const KeywordGrader*)state;
  const char* reference = input->reference;
  const size_t reference_size = input->reference_size;
  /* Each list holds some of the reference's keywords plus ", " between them: never more than twice its size. */
  const size_t list_cap = 2 * reference_size + 1;
  char* found_list = (char*)malloc(list_cap);
  char* missing_list = (char*)malloc(list_cap);
  char* reason = NULL;
  size_t found_size = 0;
  size_t missing_size = 0;
  size_t found = 0;
  size_t total = 0;
  size_t begin = 0;
  int status = GRPO_GRADE_OK;

  if (found_list == NULL || missing_list == NULL) {
    static const char kOutOfMemory[] = "out of memory";
    free(found_list);
    free(missing_list);
    output->set_reason(output->host, kOutOfMemory, sizeof kOutOfMemory - 1);
    return GRPO_GRADE_ERROR;
  }

  while (begin <= reference_size) {
    size_t end = begin;
    size_t word_begin;
    size_t word_end;
    while (end < reference_size && reference[end] != ',') ++end;
    word_begin = begin;
    word_end = end;
    while (word_begin < word_end && is_space(reference[word_begin])) ++word_begin;
    while (word_end > word_begin && is_space(reference[word_end - 1])) --word_end;
    if (word_end > word_begin) {
      const char* word = reference + word_begin;
      const size_t word_size = word_end - word_begin;
      ++total;
      if (contains(input->completion, input->completion_size, word, word_size, grader->case_sensitive)) {
        ++found;
        append_word(found_list, &found_size, word, word_size);
      } else {
        append_word(missing_list, &missing_size, word, word_size);
      }
    }
    begin = end + 1;
  }

  if (total == 0) {
    static const char kNoKeywords[] =
        "the reference lists no keywords; it should be a comma-separated list such as \"paris, france\"";
    output->set_reason(output->host, kNoKeywords, sizeof kNoKeywords - 1);
    status = GRPO_GRADE_CANNOT_SCORE;
  } else {
    const double fraction = (double)found / (double)total;
    output->score = found == total ? 1.0 : (grader->partial_credit ? fraction : 0.0);
    output->set_extracted(output->host, found_list, found_size);
    output->add_component(output->host, "keywords_found", strlen("keywords_found"), fraction);
    if (found < total) {
      /* "missing 1 of 3 keywords: rome" */
      const size_t reason_cap = missing_size + 64;
      reason = (char*)malloc(reason_cap);
      if (reason == NULL) {
        output->set_reason(output->host, "out of memory", strlen("out of memory"));
        status = GRPO_GRADE_ERROR;
      } else {
        int prefix = snprintf(reason, reason_cap, "missing %lu of %lu keywords: ", (unsigned long)(total - found),
                              (unsigned long)total);
        memcpy(reason + prefix, missing_list, missing_size);
        /* The host copies the reason before set_reason returns, so it is freed right below. */
        output->set_reason(output->host, reason, (size_t)prefix + missing_size);
      }
    }
  }
  free(reason);
  free(found_list);
  free(missing_list);
  return status;
}

static const GrpoGraderPluginV1 kDescriptor = {
    GRPO_GRADER_ABI_VERSION,
    sizeof(GrpoGraderPluginV1),
    "keyword",
    "1 when the completion contains every comma-separated keyword of the reference",
    /* The state is read-only after create(), so concurrent grade() calls are safe. */
    GRPO_GRADER_FLAG_THREAD_SAFE,
    0,
    keyword_create,
    keyword_destroy,
    keyword_grade,
};

GRPO_GRADER_EXPORT const void* grpo_grader_plugin(uint32_t host_abi_version) {
  /* This plug-in implements version 1 only; a host older than that (there is none) gets NULL. */
  return host_abi_version >= 1 ? &kDescriptor : NULL;
}
