/* The shared control-record vectors (spec/vectors/control.txt) checked by the C codec: every case's
 * bytes decode to exactly the record its `message:` line shows, and encoding that record gives the
 * same bytes back, byte for byte. The file's stated control fingerprint must be ours. */
#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/control.h"

static int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

uint8_t *parse_hex(const char *text, size_t *len) {
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) {
    n--;
  }
  if (n % 2 != 0) {
    return NULL;
  }
  uint8_t *out = malloc(n / 2 + 1);
  if (out == NULL) {
    return NULL;
  }
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hex_value(text[2 * i]);
    int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(out);
      return NULL;
    }
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  *len = n / 2;
  return out;
}

static void chomp(char *line) {
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
    line[--n] = '\0';
  }
}

/* Checks one case; returns 0 when it passes. */
static int check_case(const char *label, const char *message, const char *hex) {
  size_t len = 0;
  uint8_t *bytes = parse_hex(hex, &len);
  if (bytes == NULL) {
    fprintf(stderr, "  vector %s: malformed bytes line\n", label);
    return 1;
  }
  int failures = 0;
  ir_ctl_msg_t msg;
  char why[128];
  if (ir_ctl_decode(bytes, len, &msg, why, sizeof why) != IR_OK) {
    fprintf(stderr, "  vector %s: decode failed: %s\n", label, why);
    ir_ctl_free(&msg);
    free(bytes);
    return 1;
  }
  ir_avro_writer_t json;
  ir_avro_writer_init_dynamic(&json);
  ir_ctl_to_json(&msg, &json);
  ir_avro_write_raw(&json, "", 1);
  if (strcmp((const char *)json.data, message) != 0) {
    fprintf(stderr, "  vector %s: decoded as\n    %s\n  expected\n    %s\n", label, (const char *)json.data, message);
    failures++;
  }
  ir_avro_writer_t encoded;
  ir_avro_writer_init_dynamic(&encoded);
  ir_ctl_encode(&msg, &encoded);
  if (encoded.len != len || memcmp(encoded.data, bytes, len) != 0) {
    fprintf(stderr, "  vector %s: re-encoding gives %zu bytes that differ from the vector's %zu\n", label, encoded.len,
            len);
    failures++;
  }
  /* Every strict prefix must fail to decode, never crash. */
  for (size_t cut = 0; cut < len; cut++) {
    ir_ctl_msg_t partial;
    if (ir_ctl_decode(bytes, cut, &partial, why, sizeof why) == IR_OK) {
      fprintf(stderr, "  vector %s: a prefix of %zu bytes decoded\n", label, cut);
      failures++;
    }
    ir_ctl_free(&partial);
  }
  ir_avro_writer_free(&encoded);
  ir_avro_writer_free(&json);
  ir_ctl_free(&msg);
  free(bytes);
  return failures;
}

int test_control_vectors(const char *path, int *cases) {
  *cases = 0;
  FILE *file = fopen(path, "r");
  if (file == NULL) {
    fprintf(stderr, "  cannot open %s (set IMPULSE_RING_VECTORS)\n", path);
    return 1;
  }
  int failures = 0;
  bool fingerprint_seen = false;
  char label[128] = "";
  char *message = NULL;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, file) >= 0) {
    chomp(line);
    const char *fp_key = "# control union fingerprint: ";
    if (strncmp(line, fp_key, strlen(fp_key)) == 0) {
      fingerprint_seen = true;
      unsigned long long stated = strtoull(line + strlen(fp_key), NULL, 16);
      if (stated != IR_CONTROL_FINGERPRINT) {
        fprintf(stderr, "  the vectors state control fingerprint %016llx, the C codec uses %016llx\n", stated,
                (unsigned long long)IR_CONTROL_FINGERPRINT);
        failures++;
      }
    } else if (line[0] == '#' && line[1] == ' ' && line[2] >= '0' && line[2] <= '9') {
      (void)snprintf(label, sizeof label, "%s", line + 2);
    } else if (strncmp(line, "message: ", 9) == 0) {
      free(message);
      message = strdup(line + 9);
    } else if (strncmp(line, "bytes: ", 7) == 0 && message != NULL) {
      failures += check_case(label, message, line + 7);
      (*cases)++;
      free(message);
      message = NULL;
    }
  }
  free(message);
  free(line);
  fclose(file);
  if (!fingerprint_seen) {
    fprintf(stderr, "  %s does not state the control union fingerprint\n", path);
    failures++;
  }
  if (*cases == 0) {
    fprintf(stderr, "  %s holds no cases\n", path);
    failures++;
  }
  return failures;
}
