/* The safetensors reader and writer (sdk/src/model/safetensors.h): malformed
 * files generated at run time (each must give its status and a message that
 * names the file, the tensor and the problem), bit-exact round trips for
 * every dtype, and a small fuzz loop (byte flips, truncations) that must
 * never crash (run it under ASan: -DCMAKE_C_FLAGS=-fsanitize=address). */
#include "model/safetensors.h"
#include "numeric.h"

#include "model_test_util.h"

#include <math.h>
#include <sys/stat.h>

#define ERR_SIZE 1024

/* Writes [8-byte length][header][data_bytes bytes of 0x5a] to name. */
static void make_file(const char *path, const char *header, size_t header_len, size_t data_bytes)
{
    size_t n = 8 + header_len + data_bytes;
    unsigned char *bytes = malloc(n);
    ck_assert_ptr_nonnull(bytes);
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    memcpy(bytes + 8, header, header_len);
    memset(bytes + 8 + header_len, 0x5a, data_bytes);
    write_bytes(path, bytes, n);
    free(bytes);
}

/* Opens path, expecting status and a message naming path and the needles,
 * then removes path. The output handle must stay untouched. */
static void expect_open_fails(const char *path, sla2_status status, const char *needle, const char *needle2)
{
    char err[ERR_SIZE] = "";
    int sentinel;
    sla2_safetensors *st = (sla2_safetensors *)&sentinel;
    sla2_status got = sla2_safetensors_open(path, &st, err, sizeof err);
    unlink(path); /* first, so that a failed check leaves nothing behind (a directory stays) */
    ck_assert_msg(got == status, "%s: expected %s, got %s (%s)", path, sla2_status_string(status),
                  sla2_status_string(got), err);
    ck_assert_ptr_eq(st, (sla2_safetensors *)&sentinel);
    show_message(err);
    ck_assert_contains(err, path);
    if (needle != NULL)
        ck_assert_contains(err, needle);
    if (needle2 != NULL)
        ck_assert_contains(err, needle2);
}

/* ---- Malformed headers ------------------------------------------------------ */

#define TENSOR_W "\"w\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,120]}"
#define W_WITH(dtype, shape, offsets) \
    "{\"w\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offsets "}}"

typedef struct header_case {
    const char *header;
    size_t data_bytes;
    sla2_status status;
    const char *needle;
    const char *needle2;
} header_case;

static const header_case header_cases[] = {
    /* Not JSON, or not JSON as safetensors needs it. */
    {"not json at all", 120, SLA2_ERR_FORMAT, "does not start with '{'", NULL},
    {"{", 120, SLA2_ERR_FORMAT, "unexpected end", NULL},
    {"{\"w\":", 120, SLA2_ERR_FORMAT, "unexpected end, expected a value", NULL},
    {"{" TENSOR_W "} x", 120, SLA2_ERR_FORMAT, "unexpected data after the JSON value", NULL},
    {"{" TENSOR_W ",}", 120, SLA2_ERR_FORMAT, "expected a string key", NULL},
    {"{'w':1}", 120, SLA2_ERR_FORMAT, "expected a string key", NULL},
    {"{/* comment */" TENSOR_W "}", 120, SLA2_ERR_FORMAT, "expected a string key", NULL},
    {"{\"w\":nul}", 120, SLA2_ERR_FORMAT, "invalid literal", NULL},
    {"{\"w\" {}}", 120, SLA2_ERR_FORMAT, "expected ':'", NULL},
    {"{\"w\":{} \"v\":{}}", 120, SLA2_ERR_FORMAT, "expected ',' or '}'", NULL},
    {"{\"w\":{\"shape\":[1 2]}}", 120, SLA2_ERR_FORMAT, "expected ',' or ']'", NULL},
    /* Strings: UTF-8 and escapes. */
    {"{\"\xff\":{}}", 120, SLA2_ERR_FORMAT, "invalid UTF-8", NULL},
    {"{\"\xc0\xaf\":{}}", 120, SLA2_ERR_FORMAT, "invalid UTF-8", NULL},           /* overlong '/' */
    {"{\"\xed\xa0\x80\":{}}", 120, SLA2_ERR_FORMAT, "invalid UTF-8", NULL},       /* a surrogate */
    {"{\"\xf4\x90\x80\x80\":{}}", 120, SLA2_ERR_FORMAT, "invalid UTF-8", NULL},   /* > U+10FFFF */
    {"{\"ab\xe4\xb8\":{}}", 120, SLA2_ERR_FORMAT, "invalid UTF-8", NULL},         /* cut short */
    {"{\"a\\qb\":{}}", 120, SLA2_ERR_FORMAT, "invalid escape '\\q'", NULL},
    {"{\"a\\u12G4\":{}}", 120, SLA2_ERR_FORMAT, "4 hex digits", NULL},
    {"{\"a\\ud800\":{}}", 120, SLA2_ERR_FORMAT, "unpaired high surrogate", NULL},
    {"{\"a\\udc00\":{}}", 120, SLA2_ERR_FORMAT, "unpaired low surrogate", NULL},
    {"{\"a\\u0000\":{}}", 120, SLA2_ERR_FORMAT, "NUL", NULL},
    {"{\"a\nb\":{}}", 120, SLA2_ERR_FORMAT, "control character 0x0a", NULL},
    {"{\"w\":{\"dtype\":\"F32}}", 120, SLA2_ERR_FORMAT, "unterminated string", NULL},
    /* Duplicates. */
    {"{" TENSOR_W "," TENSOR_W "}", 120, SLA2_ERR_FORMAT, "duplicate key \"w\"", NULL},
    {"{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[5,6],\"data_offsets\":[0,120]}}", 120,
     SLA2_ERR_FORMAT, "duplicate key \"dtype\"", NULL},
    /* Tensor entries: missing keys, wrong types. */
    {"{\"w\":{\"shape\":[5,6],\"data_offsets\":[0,120]}}", 120, SLA2_ERR_FORMAT, "missing 'dtype'", "'w'"},
    {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,120]}}", 120, SLA2_ERR_FORMAT, "missing 'shape'", "'w'"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[5,6]}}", 120, SLA2_ERR_FORMAT, "missing 'data_offsets'", "'w'"},
    {"{\"w\":[1,2]}", 120, SLA2_ERR_FORMAT, "expected an object with dtype, shape and data_offsets, got an array", "'w'"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,120],\"foo\":1}}", 120, SLA2_ERR_FORMAT,
     "unknown key 'foo'", "'w'"},
    {"{\"\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,120]}}", 120, SLA2_ERR_FORMAT, "empty name", NULL},
    {W_WITH("5", "[5,6]", "[0,120]"), 120, SLA2_ERR_FORMAT, "dtype: expected a string, got an integer", "'w'"},
    {W_WITH("\"F64\"", "[5,6]", "[0,120]"), 120, SLA2_ERR_UNSUPPORTED, "unsupported dtype 'F64'", "'w'"},
    {W_WITH("\"BOOL\"", "[5,6]", "[0,30]"), 120, SLA2_ERR_UNSUPPORTED, "unsupported dtype 'BOOL'", "'w'"},
    {W_WITH("\"F33\"", "[5,6]", "[0,120]"), 120, SLA2_ERR_FORMAT, "unknown dtype 'F33'", "'w'"},
    {W_WITH("\"F32\"", "\"5\"", "[0,120]"), 120, SLA2_ERR_FORMAT, "shape: expected an array of integers, got a string", "'w'"},
    {W_WITH("\"F32\"", "[5,-6]", "[0,120]"), 120, SLA2_ERR_FORMAT, "shape[1] is negative (-6)", "'w'"},
    {W_WITH("\"F32\"", "[2.5]", "[0,10]"), 120, SLA2_ERR_FORMAT, "shape[0]: expected a non-negative integer, got a non-integer number", "'w'"},
    {W_WITH("\"F32\"", "[1e2]", "[0,400]"), 400, SLA2_ERR_FORMAT, "got a non-integer number", "'w'"},
    {W_WITH("\"F32\"", "[true]", "[0,4]"), 120, SLA2_ERR_FORMAT, "shape[0]: expected a non-negative integer, got a boolean", "'w'"},
    {W_WITH("\"F32\"", "[null]", "[0,4]"), 120, SLA2_ERR_FORMAT, "got null", "'w'"},
    {W_WITH("\"F32\"", "[05]", "[0,20]"), 120, SLA2_ERR_FORMAT, "leading zero", NULL},
    {W_WITH("\"F32\"", "[4294967296,4294967296]", "[0,0]"), 120, SLA2_ERR_FORMAT, "F32 [4294967296, 4294967296]: its size in bytes overflows 64 bits", "'w'"},
    {W_WITH("\"I8\"", "[4611686018427387904,4]", "[0,0]"), 120, SLA2_ERR_FORMAT, "overflows 64 bits", "'w'"},
    {W_WITH("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 120, SLA2_ERR_UNSUPPORTED, "shape has 9 dimensions", "'w'"},
    /* data_offsets. */
    {W_WITH("\"F32\"", "[5,6]", "[0]"), 120, SLA2_ERR_FORMAT, "data_offsets: expected [begin, end], got an array of another length", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "[0,120,240]"), 240, SLA2_ERR_FORMAT, "expected [begin, end]", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "{}"), 120, SLA2_ERR_FORMAT, "data_offsets: expected [begin, end], got an object", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "[120,0]"), 120, SLA2_ERR_FORMAT, "data_offsets [120, 0) are reversed", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "[0,240]"), 120, SLA2_ERR_FORMAT, "[0, 240) end outside the data area of 120 bytes", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "[0,120]"), 119, SLA2_ERR_FORMAT, "outside the data area of 119 bytes", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "[-8,112]"), 120, SLA2_ERR_FORMAT, "data_offsets[0]: expected a non-negative integer, got a negative one", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "[0,\"120\"]"), 120, SLA2_ERR_FORMAT, "data_offsets[1]: expected a non-negative integer, got a string", "'w'"},
    {W_WITH("\"F32\"", "[5,6]", "[0,99999999999999999999]"), 120, SLA2_ERR_FORMAT, "out of the 64-bit range", NULL},
    {W_WITH("\"F32\"", "[5,6]", "[0,100]"), 100, SLA2_ERR_FORMAT,
     "tensor 'w': data_offsets [0, 100) hold 100 bytes but F32 [5, 6] needs 120", NULL},
    {W_WITH("\"BF16\"", "[3]", "[0,4]"), 120, SLA2_ERR_FORMAT, "hold 4 bytes but BF16 [3] needs 6", "'w'"},
    {W_WITH("\"F8_E4M3\"", "[]", "[0,2]"), 120, SLA2_ERR_FORMAT, "hold 2 bytes but F8_E4M3 [] needs 1", "'w'"},
    /* Overlaps. */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,120]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[60,180]}}", 180, SLA2_ERR_FORMAT,
     "tensor 'b': data_offsets [60, 180) overlap tensor 'a' at [0, 120)", NULL},
    {"{\"b\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[0,8]},"
     "\"a\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, SLA2_ERR_FORMAT, "overlap tensor", NULL},
    {"{\"big\":{\"dtype\":\"I8\",\"shape\":[100],\"data_offsets\":[0,100]},"
     "\"x\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[10,14]},"
     "\"y\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[50,54]}}", 100, SLA2_ERR_FORMAT,
     "overlap tensor 'big'", NULL},
    /* __metadata__. */
    {"{\"__metadata__\":\"x\"," TENSOR_W "}", 120, SLA2_ERR_FORMAT, "__metadata__: expected an object of strings, got a string", NULL},
    {"{\"__metadata__\":{\"k\":1}," TENSOR_W "}", 120, SLA2_ERR_FORMAT, "__metadata__['k']: expected a string, got an integer", NULL},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}," TENSOR_W "}", 120, SLA2_ERR_FORMAT, "duplicate key \"k\"", NULL},
};

START_TEST(test_malformed_header)
{
    const header_case *c = &header_cases[_i];
    char path[512], name[64];
    snprintf(name, sizeof name, "header_case_%02d.safetensors", _i);
    temp_path(path, sizeof path, name);
    make_file(path, c->header, strlen(c->header), c->data_bytes);
    expect_open_fails(path, c->status, c->needle, c->needle2);
    unlink(path);
}
END_TEST

START_TEST(test_deep_nesting)
{
    char header[256], path[512];
    size_t n = 0;
    n += (size_t)snprintf(header + n, sizeof header - n, "{\"w\":");
    for (int i = 0; i < 40; i++)
        header[n++] = '[';
    for (int i = 0; i < 40; i++)
        header[n++] = ']';
    header[n++] = '}';
    header[n] = '\0';
    temp_path(path, sizeof path, "deep.safetensors");
    make_file(path, header, n, 0);
    expect_open_fails(path, SLA2_ERR_FORMAT, "nesting deeper than 16 levels", NULL);
    unlink(path);
}
END_TEST

/* ---- Malformed files: sizes and lengths -------------------------------------- */

START_TEST(test_empty_file)
{
    char path[512];
    temp_path(path, sizeof path, "empty.safetensors");
    write_bytes(path, "", 0);
    expect_open_fails(path, SLA2_ERR_FORMAT, "file is empty", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_shorter_than_length_field)
{
    char path[512];
    temp_path(path, sizeof path, "short.safetensors");
    write_bytes(path, "\x10\x00\x00\x00\x00", 5);
    expect_open_fails(path, SLA2_ERR_FORMAT, "file is 5 bytes, too short for the 8-byte header length", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_header_length_zero)
{
    char path[512];
    temp_path(path, sizeof path, "zero_header.safetensors");
    write_bytes(path, "\0\0\0\0\0\0\0\0{}", 10);
    expect_open_fails(path, SLA2_ERR_FORMAT, "header length is 0", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_header_length_huge)
{
    char path[512];
    unsigned char bytes[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '}; /* 2^40 */
    temp_path(path, sizeof path, "huge_header.safetensors");
    write_bytes(path, bytes, sizeof bytes);
    expect_open_fails(path, SLA2_ERR_FORMAT, "header length 1099511627776 exceeds the limit of 100000000 bytes", NULL);
    memset(bytes, 0xff, 8); /* 2^64 - 1: no wrap-around in the bound checks */
    write_bytes(path, bytes, sizeof bytes);
    expect_open_fails(path, SLA2_ERR_FORMAT, "exceeds the limit", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_header_length_beyond_file)
{
    char path[512];
    unsigned char bytes[50];
    memset(bytes, ' ', sizeof bytes);
    memset(bytes, 0, 8);
    bytes[0] = 100;
    bytes[8] = '{';
    bytes[9] = '}';
    temp_path(path, sizeof path, "beyond.safetensors");
    write_bytes(path, bytes, sizeof bytes);
    expect_open_fails(path, SLA2_ERR_FORMAT, "header length 100 exceeds the 42 bytes after the length field", NULL);
    unlink(path);
}
END_TEST

START_TEST(test_not_a_file)
{
    expect_open_fails(g_temp_dir, SLA2_ERR_IO, "not a regular file", NULL);
    char path[512];
    temp_path(path, sizeof path, "does-not-exist.safetensors");
    expect_open_fails(path, SLA2_ERR_IO, "cannot open", NULL);
    temp_path(path, sizeof path, "fifo.safetensors");
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    expect_open_fails(path, SLA2_ERR_IO, "not a regular file", NULL); /* refused, not blocking */
    unlink(path);
}
END_TEST

/* ---- Valid files ---------------------------------------------------------- */

static void fill_random(void *data, size_t n)
{
    unsigned char *b = data;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)rng_next();
}

static uint32_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* The float each dtype's element i decodes to, through numeric.h. */
static float decode(sla2_st_dtype dtype, const unsigned char *b, size_t i)
{
    switch (dtype) {
    case SLA2_ST_F32: {
        float f;
        memcpy(&f, b + 4 * i, 4);
        return f;
    }
    case SLA2_ST_F16: return sla2_f16_to_float((uint16_t)(b[2 * i] | (b[2 * i + 1] << 8)));
    case SLA2_ST_BF16: return sla2_bf16_to_float((uint16_t)(b[2 * i] | (b[2 * i + 1] << 8)));
    case SLA2_ST_I8: return (float)(int8_t)b[i];
    case SLA2_ST_F8_E4M3: return sla2_e4m3_to_float(b[i]);
    default: return NAN;
    }
}

START_TEST(test_round_trip_every_dtype)
{
    g_rng_state = 42;
    static const int64_t shapes[SLA2_ST_NUM_DTYPES][3] = {{3, 5, 7}, {4, 64, 1}, {2, 3, 11}, {17, 1, 3}, {256, 1, 1}};
    static const char *const names[SLA2_ST_NUM_DTYPES] = {
        "blocks.0.self_attn.q.weight", "blocks.0.self_attn.sla2.router_q", "blocks.0.ffn.0.weight",
        "blocks.0.self_attn.k.weight_int8", "blocks.0.self_attn.v.weight_fp8"};
    sla2_st_write_tensor tensors[SLA2_ST_NUM_DTYPES];
    void *buffers[SLA2_ST_NUM_DTYPES];
    size_t bytes[SLA2_ST_NUM_DTYPES];
    for (int d = 0; d < SLA2_ST_NUM_DTYPES; d++) {
        size_t elems = (size_t)(shapes[d][0] * shapes[d][1] * shapes[d][2]);
        bytes[d] = elems * sla2_st_dtype_size((sla2_st_dtype)d);
        buffers[d] = malloc(bytes[d]);
        fill_random(buffers[d], bytes[d]); /* every bit pattern, NaNs included */
        tensors[d] = (sla2_st_write_tensor){names[d], (sla2_st_dtype)d, 3, shapes[d], buffers[d]};
    }
    const char *keys[] = {"format", "sla2.alpha"};
    const char *values[] = {"pt", "per_head"};
    char path[512], err[ERR_SIZE] = "";
    temp_path(path, sizeof path, "round_trip.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, tensors, SLA2_ST_NUM_DTYPES, keys, values, 2, err, sizeof err),
                     SLA2_OK);
    ck_assert_int_eq(temp_dir_count(), 1); /* no temporary file left */

    sla2_safetensors *st = NULL;
    ck_assert_msg(sla2_safetensors_open(path, &st, err, sizeof err) == SLA2_OK, "%s", err);
    ck_assert_uint_eq(sla2_safetensors_count(st), SLA2_ST_NUM_DTYPES);
    ck_assert_str_eq(sla2_safetensors_metadata_value(st, "format"), "pt");
    ck_assert_str_eq(sla2_safetensors_metadata_value(st, "sla2.alpha"), "per_head");
    ck_assert_ptr_null(sla2_safetensors_metadata_value(st, "missing"));
    ck_assert_uint_eq(sla2_safetensors_metadata_count(st), 2);
    uint64_t offset = 0;
    for (int d = 0; d < SLA2_ST_NUM_DTYPES; d++) {
        /* Written in order and contiguous, so read back in the same order. */
        const sla2_st_tensor *t = sla2_safetensors_at(st, (size_t)d);
        ck_assert_ptr_eq(t, sla2_safetensors_find(st, names[d]));
        ck_assert_str_eq(t->name, names[d]);
        ck_assert_int_eq(t->dtype, d);
        ck_assert_int_eq(t->ndim, 3);
        for (int k = 0; k < 3; k++)
            ck_assert_int_eq(t->shape[k], shapes[d][k]);
        ck_assert_uint_eq(t->num_bytes, bytes[d]);
        ck_assert_uint_eq(t->data_begin, offset);
        offset += bytes[d];
        ck_assert_int_eq(memcmp(t->data, buffers[d], bytes[d]), 0); /* bit-exact */
        float *out = malloc(t->num_elems * sizeof *out);
        for (size_t i = 0; i < t->num_elems; i++)
            out[i] = NAN; /* poisoned: an unwritten element fails */
        ck_assert_int_eq(sla2_safetensors_read_f32(st, t, out, t->num_elems, err, sizeof err), SLA2_OK);
        for (size_t i = 0; i < t->num_elems; i++) {
            float want = decode((sla2_st_dtype)d, buffers[d], i);
            /* Bit equality: conversions are exact, so no tolerance. NaN
             * payloads may differ between converters; any NaN is a NaN. */
            if (isnan(want))
                ck_assert_msg(isnan(out[i]), "%s[%zu]: expected NaN", names[d], i);
            else
                ck_assert_msg(float_bits(out[i]) == float_bits(want), "%s[%zu]: %a != %a", names[d], i,
                              (double)out[i], (double)want);
        }
        free(out);
    }
    ck_assert_ptr_null(sla2_safetensors_find(st, "blocks.0.self_attn.q"));
    ck_assert_ptr_null(sla2_safetensors_at(st, SLA2_ST_NUM_DTYPES));
    sla2_safetensors_close(st);

    /* The header is padded to 8 bytes, as the reference writer does. */
    FILE *f = fopen(path, "rb");
    unsigned char length_field[8];
    ck_assert_uint_eq(fread(length_field, 1, 8, f), 8);
    fclose(f);
    ck_assert_uint_eq(length_field[0] % 8, 0);
    for (int d = 0; d < SLA2_ST_NUM_DTYPES; d++)
        free(buffers[d]);
    unlink(path);
}
END_TEST

START_TEST(test_known_values)
{
    const uint16_t f16[] = {0x3C00, 0xC000, 0x7C00, 0x0001, 0x7BFF};
    const float f16_want[] = {1.0f, -2.0f, INFINITY, 0x1p-24f, 65504.0f};
    const uint16_t bf16[] = {0x3F80, 0xC040, 0x0000, 0x8000};
    const float bf16_want[] = {1.0f, -3.0f, 0.0f, -0.0f};
    const int8_t i8[] = {-128, 127, 0, -1};
    const float i8_want[] = {-128.0f, 127.0f, 0.0f, -1.0f};
    const uint8_t f8[] = {0x38, 0x7E, 0xFE, 0x01, 0x40};
    const float f8_want[] = {1.0f, 448.0f, -448.0f, 0x1p-9f, 2.0f};
    const int64_t n_f16 = 5, n_bf16 = 4, n_i8 = 4, n_f8 = 5;
    sla2_st_write_tensor tensors[] = {
        {"f16", SLA2_ST_F16, 1, &n_f16, f16},
        {"bf16", SLA2_ST_BF16, 1, &n_bf16, bf16},
        {"i8", SLA2_ST_I8, 1, &n_i8, i8},
        {"f8", SLA2_ST_F8_E4M3, 1, &n_f8, f8},
    };
    const float *wants[] = {f16_want, bf16_want, i8_want, f8_want};
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "known.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, tensors, 4, NULL, NULL, 0, err, sizeof err), SLA2_OK);
    sla2_safetensors *st;
    ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
    for (int k = 0; k < 4; k++) {
        const sla2_st_tensor *t = sla2_safetensors_find(st, tensors[k].name);
        ck_assert_ptr_nonnull(t);
        float out[8];
        ck_assert_int_eq(sla2_safetensors_read_f32(st, t, out, 8, err, sizeof err), SLA2_OK);
        for (size_t i = 0; i < t->num_elems; i++)
            ck_assert_msg(float_bits(out[i]) == float_bits(wants[k][i]), "%s[%zu] = %a, expected %a",
                          t->name, i, (double)out[i], (double)wants[k][i]);
    }
    /* e4m3 0x7F is NaN. */
    const uint8_t nan8 = 0x7F;
    const int64_t one = 1;
    sla2_st_write_tensor nan_tensor = {"nan", SLA2_ST_F8_E4M3, 1, &one, &nan8};
    sla2_safetensors_close(st);
    ck_assert_int_eq(sla2_safetensors_write(path, &nan_tensor, 1, NULL, NULL, 0, err, sizeof err), SLA2_OK);
    ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
    float out = 0.0f;
    ck_assert_int_eq(sla2_safetensors_read_f32(st, sla2_safetensors_at(st, 0), &out, 1, err, sizeof err), SLA2_OK);
    ck_assert(isnan(out));
    sla2_safetensors_close(st);
    unlink(path);
}
END_TEST

START_TEST(test_scalars_empty_tensors_and_odd_names)
{
    const float scalar = 3.5f;
    const int64_t empty_shape[2] = {0, 3};
    const char *odd = "quote\" back\\slash\nnewline\ttab \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80";
    const float one[1] = {1.0f};
    const int64_t shape1 = 1;
    sla2_st_write_tensor tensors[] = {
        {"scalar", SLA2_ST_F32, 0, NULL, &scalar},
        {"empty", SLA2_ST_BF16, 2, empty_shape, NULL},
        {odd, SLA2_ST_F32, 1, &shape1, one},
    };
    const char *keys[] = {"k\"ey\n"};
    const char *values[] = {"v\\alue \xe2\x82\xac"};
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "odd.safetensors");
    ck_assert_msg(sla2_safetensors_write(path, tensors, 3, keys, values, 1, err, sizeof err) == SLA2_OK, "%s", err);
    sla2_safetensors *st;
    ck_assert_msg(sla2_safetensors_open(path, &st, err, sizeof err) == SLA2_OK, "%s", err);
    const sla2_st_tensor *t = sla2_safetensors_find(st, "scalar");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_uint_eq(t->num_elems, 1);
    float v = 0.0f;
    ck_assert_int_eq(sla2_safetensors_read_f32(st, t, &v, 1, err, sizeof err), SLA2_OK);
    ck_assert(v == 3.5f);
    t = sla2_safetensors_find(st, "empty");
    ck_assert_uint_eq(t->num_elems, 0);
    ck_assert_uint_eq(t->num_bytes, 0);
    ck_assert_int_eq(sla2_safetensors_read_f32(st, t, &v, 0, err, sizeof err), SLA2_OK);
    t = sla2_safetensors_find(st, odd);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->name, odd);
    ck_assert_str_eq(sla2_safetensors_metadata_value(st, keys[0]), values[0]);
    sla2_safetensors_close(st);
    unlink(path);
}
END_TEST

/* A file laid out as other writers lay it out: spaces in the JSON, keys in
 * another order, escapes, a gap between tensors, an empty tensor sharing an
 * offset, trailing spaces in the header. */
START_TEST(test_foreign_layout)
{
    const char *header =
        "{ \"b\" : { \"data_offsets\" : [ 16 , 24 ] , \"shape\" : [ 2 ] , \"dtype\" : \"F32\" } ,\n"
        "  \"__metadata__\" : { \"format\" : \"pt\" } ,\n"
        "  \"a\\u00e9\\/x\" : { \"dtype\" : \"I8\" , \"shape\" : [ 2 , 2 ] , \"data_offsets\" : [ 0 , 4 ] } ,\n"
        "  \"e\" : { \"dtype\" : \"F16\" , \"shape\" : [ 0 ] , \"data_offsets\" : [ 16 , 16 ] } }    ";
    size_t header_len = strlen(header);
    unsigned char bytes[512] = {0};
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    memcpy(bytes + 8, header, header_len);
    unsigned char *data = bytes + 8 + header_len;
    const int8_t a[4] = {1, -2, 3, -4};
    const float b[2] = {0.25f, -8.0f};
    memcpy(data, a, 4);
    memcpy(data + 16, b, 8);
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "foreign.safetensors");
    write_bytes(path, bytes, 8 + header_len + 24);
    sla2_safetensors *st;
    ck_assert_msg(sla2_safetensors_open(path, &st, err, sizeof err) == SLA2_OK, "%s", err);
    ck_assert_uint_eq(sla2_safetensors_count(st), 3);
    ck_assert_str_eq(sla2_safetensors_at(st, 0)->name, "a\xc3\xa9/x"); /* sorted by offset */
    float out[4];
    ck_assert_int_eq(sla2_safetensors_read_f32(st, sla2_safetensors_at(st, 0), out, 4, err, sizeof err), SLA2_OK);
    ck_assert(out[0] == 1.0f && out[1] == -2.0f && out[2] == 3.0f && out[3] == -4.0f);
    ck_assert_int_eq(sla2_safetensors_read_f32(st, sla2_safetensors_find(st, "b"), out, 4, err, sizeof err), SLA2_OK);
    ck_assert(out[0] == 0.25f && out[1] == -8.0f);
    ck_assert_uint_eq(sla2_safetensors_find(st, "e")->num_elems, 0);
    ck_assert_str_eq(sla2_safetensors_metadata_value(st, "format"), "pt");

    /* The same bytes from memory. */
    sla2_safetensors *from_memory;
    ck_assert_int_eq(sla2_safetensors_open_memory(bytes, 8 + header_len + 24, "embedded", &from_memory, err, sizeof err),
                     SLA2_OK);
    ck_assert_uint_eq(sla2_safetensors_count(from_memory), 3);
    /* A tensor of another handle is refused. */
    ck_assert_int_eq(sla2_safetensors_read_f32(from_memory, sla2_safetensors_find(st, "b"), out, 4, err, sizeof err),
                     SLA2_ERR_INVALID_VALUE);
    ck_assert_contains(err, "does not belong");
    sla2_safetensors_close(from_memory);
    sla2_safetensors_close(st);
    unlink(path);
}
END_TEST

START_TEST(test_empty_header_object)
{
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "no_tensors.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, NULL, 0, NULL, NULL, 0, err, sizeof err), SLA2_OK);
    sla2_safetensors *st;
    ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
    ck_assert_uint_eq(sla2_safetensors_count(st), 0);
    ck_assert_ptr_null(sla2_safetensors_find(st, "x"));
    sla2_safetensors_close(st);
    unlink(path);
}
END_TEST

/* ---- API misuse ------------------------------------------------------------ */

START_TEST(test_read_f32_errors)
{
    const float data[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[2] = {2, 3};
    sla2_st_write_tensor tensor = {"t", SLA2_ST_F32, 2, shape, data};
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "read_errors.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, &tensor, 1, NULL, NULL, 0, err, sizeof err), SLA2_OK);
    sla2_safetensors *st;
    ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
    const sla2_st_tensor *t = sla2_safetensors_find(st, "t");
    float out[6];
    ck_assert_int_eq(sla2_safetensors_read_f32(st, t, out, 5, err, sizeof err), SLA2_ERR_INVALID_VALUE);
    ck_assert_contains(err, "tensor 't': has 6 elements but the buffer holds 5");
    ck_assert_int_eq(sla2_safetensors_read_f32(st, t, NULL, 6, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_read_f32(NULL, t, out, 6, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_read_f32(st, NULL, out, 6, NULL, 0), SLA2_ERR_NULL_ARGUMENT);
    const char *k, *v;
    ck_assert_int_eq(sla2_safetensors_metadata_at(st, 0, &k, &v), SLA2_ERR_INVALID_VALUE);
    sla2_safetensors_close(st);
    sla2_safetensors_close(NULL);
    ck_assert_uint_eq(sla2_safetensors_count(NULL), 0);
    ck_assert_ptr_null(sla2_safetensors_find(NULL, "t"));
    ck_assert_int_eq(sla2_safetensors_open(NULL, &st, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_open(path, NULL, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_open_memory(NULL, 8, "x", &st, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_open_memory(NULL, 0, NULL, &st, err, sizeof err), SLA2_ERR_FORMAT);
    ck_assert_contains(err, "<memory>: file is empty");
    unlink(path);
}
END_TEST

typedef struct writer_case {
    sla2_st_write_tensor tensors[2];
    size_t count;
    sla2_status status;
    const char *needle;
} writer_case;

static const float writer_data[4] = {1, 2, 3, 4};
static const int64_t shape_4[1] = {4};
static const int64_t shape_neg[1] = {-4};

static const writer_case writer_cases[] = {
    {{{"a", SLA2_ST_F32, 1, shape_4, writer_data}, {"a", SLA2_ST_F32, 1, shape_4, writer_data}}, 2,
     SLA2_ERR_INVALID_VALUE, "tensor 'a' appears twice"},
    {{{"a", SLA2_ST_F32, 1, shape_4, NULL}}, 1, SLA2_ERR_NULL_ARGUMENT, "tensor 'a': data is NULL"},
    {{{"a", SLA2_ST_F32, 1, shape_neg, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "shape[0] is negative"},
    {{{"a", (sla2_st_dtype)99, 1, shape_4, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "unknown dtype 99"},
    {{{"a", SLA2_ST_F32, 9, shape_4, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "ndim 9 is out of range"},
    {{{"a", SLA2_ST_F32, 1, NULL, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "with a NULL shape"},
    {{{"__metadata__", SLA2_ST_F32, 1, shape_4, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "reserved"},
    {{{"bad\xff", SLA2_ST_F32, 1, shape_4, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "not valid UTF-8"},
    {{{"", SLA2_ST_F32, 1, shape_4, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "the name is empty"},
    {{{NULL, SLA2_ST_F32, 1, shape_4, writer_data}}, 1, SLA2_ERR_INVALID_VALUE, "the name is NULL"},
};

START_TEST(test_writer_rejects)
{
    const writer_case *c = &writer_cases[_i];
    char path[512], err[ERR_SIZE] = "";
    temp_path(path, sizeof path, "rejected.safetensors");
    sla2_status got = sla2_safetensors_write(path, c->tensors, c->count, NULL, NULL, 0, err, sizeof err);
    ck_assert_msg(got == c->status, "expected %s, got %s (%s)", sla2_status_string(c->status),
                  sla2_status_string(got), err);
    ck_assert_contains(err, c->needle);
    ck_assert_int_eq(temp_dir_count(), 0); /* nothing written, no temporary left */
}
END_TEST

START_TEST(test_writer_metadata_and_io_errors)
{
    const int64_t n = 4;
    sla2_st_write_tensor t = {"a", SLA2_ST_F32, 1, &n, writer_data};
    const char *keys[] = {"k", "k"};
    const char *values[] = {"1", "2"};
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "meta.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, &t, 1, keys, values, 2, err, sizeof err), SLA2_ERR_INVALID_VALUE);
    ck_assert_contains(err, "metadata key 'k' appears twice");
    const char *null_value[] = {NULL};
    ck_assert_int_eq(sla2_safetensors_write(path, &t, 1, keys, null_value, 1, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_write(path, &t, 1, NULL, NULL, 1, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_write(NULL, &t, 1, NULL, NULL, 0, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    ck_assert_int_eq(sla2_safetensors_write(path, NULL, 1, NULL, NULL, 0, err, sizeof err), SLA2_ERR_NULL_ARGUMENT);
    temp_path(path, sizeof path, "no-such-dir/x.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, &t, 1, NULL, NULL, 0, err, sizeof err), SLA2_ERR_IO);
    ck_assert_contains(err, "no-such-dir/x.safetensors: cannot create a temporary file");
    ck_assert_int_eq(temp_dir_count(), 0);
}
END_TEST

START_TEST(test_writer_replaces_atomically)
{
    const int64_t n4 = 4, n2 = 2;
    sla2_st_write_tensor first = {"a", SLA2_ST_F32, 1, &n4, writer_data};
    sla2_st_write_tensor second = {"b", SLA2_ST_F32, 1, &n2, writer_data};
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "replace.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, &first, 1, NULL, NULL, 0, err, sizeof err), SLA2_OK);
    /* A failed write leaves the old file as it was. */
    sla2_st_write_tensor bad = {"b", SLA2_ST_F32, 1, &n2, NULL};
    ck_assert_int_ne(sla2_safetensors_write(path, &bad, 1, NULL, NULL, 0, err, sizeof err), SLA2_OK);
    sla2_safetensors *st;
    ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
    ck_assert_ptr_nonnull(sla2_safetensors_find(st, "a"));
    sla2_safetensors_close(st);
    ck_assert_int_eq(sla2_safetensors_write(path, &second, 1, NULL, NULL, 0, err, sizeof err), SLA2_OK);
    ck_assert_int_eq(sla2_safetensors_open(path, &st, err, sizeof err), SLA2_OK);
    ck_assert_ptr_null(sla2_safetensors_find(st, "a"));
    ck_assert_ptr_nonnull(sla2_safetensors_find(st, "b"));
    sla2_safetensors_close(st);
    ck_assert_int_eq(temp_dir_count(), 1);
    unlink(path);
}
END_TEST

/* ---- Fuzzing ---------------------------------------------------------------- */

/* A valid file with every dtype and metadata, in memory. */
static unsigned char *valid_file(size_t *size)
{
    static float f32[12];
    static uint16_t f16[6], bf16[6];
    static int8_t i8[5];
    static uint8_t f8[7];
    fill_random(f32, sizeof f32);
    fill_random(f16, sizeof f16);
    fill_random(bf16, sizeof bf16);
    fill_random(i8, sizeof i8);
    fill_random(f8, sizeof f8);
    static const int64_t s_f32[2] = {3, 4}, s_f16[2] = {2, 3}, s_bf16[1] = {6}, s_i8[1] = {5}, s_f8[3] = {7, 1, 1};
    sla2_st_write_tensor tensors[] = {
        {"blocks.0.self_attn.q.weight", SLA2_ST_F32, 2, s_f32, f32},
        {"blocks.0.self_attn.sla2.alpha", SLA2_ST_F16, 2, s_f16, f16},
        {"blocks.0.norm.weight", SLA2_ST_BF16, 1, s_bf16, bf16},
        {"blocks.0.q.qweight", SLA2_ST_I8, 1, s_i8, i8},
        {"blocks.0.v.fp8", SLA2_ST_F8_E4M3, 3, s_f8, f8},
    };
    const char *keys[] = {"format", "note"};
    const char *values[] = {"pt", "esc\"aped \xc3\xa9"};
    char path[512], err[ERR_SIZE];
    temp_path(path, sizeof path, "fuzz_seed.safetensors");
    ck_assert_int_eq(sla2_safetensors_write(path, tensors, 5, keys, values, 2, err, sizeof err), SLA2_OK);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc(*size);
    ck_assert_uint_eq(fread(bytes, 1, *size, f), *size);
    fclose(f);
    unlink(path);
    return bytes;
}

/* Opens bytes from memory; when the file is accepted, touches every tensor. */
static sla2_status open_and_touch(const unsigned char *bytes, size_t size)
{
    char err[ERR_SIZE] = "";
    sla2_safetensors *st = NULL;
    sla2_status status = sla2_safetensors_open_memory(bytes, size, "fuzz", &st, err, sizeof err);
    if (status != SLA2_OK) {
        ck_assert_msg(st == NULL, "handle written on failure");
        ck_assert_msg(strncmp(err, "fuzz: ", 6) == 0, "message without the file name: %s", err);
        return status;
    }
    for (size_t i = 0; i < sla2_safetensors_count(st); i++) {
        const sla2_st_tensor *t = sla2_safetensors_at(st, i);
        ck_assert_ptr_eq(sla2_safetensors_find(st, t->name), t);
        ck_assert_uint_le(t->data_end, size);
        float *out = malloc((size_t)t->num_elems * sizeof *out + 1);
        ck_assert_int_eq(sla2_safetensors_read_f32(st, t, out, (size_t)t->num_elems, err, sizeof err), SLA2_OK);
        free(out);
    }
    sla2_safetensors_close(st);
    return SLA2_OK;
}

START_TEST(test_fuzz_byte_flips)
{
    g_rng_state = 7;
    size_t size;
    unsigned char *valid = valid_file(&size);
    ck_assert_int_eq(open_and_touch(valid, size), SLA2_OK);
    size_t header_end = 8;
    for (int i = 0; i < 8; i++)
        header_end += (size_t)valid[i] << (8 * i);
    unsigned char *bytes = malloc(size);
    int accepted = 0;
    const int iterations = 20000;
    for (int it = 0; it < iterations; it++) {
        memcpy(bytes, valid, size);
        int flips = 1 + (int)(rng_next() % 4);
        for (int f = 0; f < flips; f++) {
            /* Mostly the header, where the parser lives. */
            size_t at = rng_next() % 10 < 9 ? rng_next() % header_end : rng_next() % size;
            if (rng_next() % 2)
                bytes[at] ^= (unsigned char)(1u << (rng_next() % 8));
            else
                bytes[at] = (unsigned char)rng_next();
        }
        accepted += open_and_touch(bytes, size) == SLA2_OK;
    }
    /* Some mutations (inside the data, or in a name) leave the file valid. */
    ck_assert_int_gt(accepted, 0);
    ck_assert_int_lt(accepted, iterations);
    free(bytes);
    free(valid);
}
END_TEST

START_TEST(test_fuzz_truncations_and_lengths)
{
    g_rng_state = 11;
    size_t size;
    unsigned char *valid = valid_file(&size);
    /* Every tensor holds data, so every strict prefix is invalid. */
    for (size_t n = 0; n < size; n++) {
        unsigned char *prefix = malloc(n ? n : 1);
        memcpy(prefix, valid, n);
        ck_assert_msg(open_and_touch(prefix, n) != SLA2_OK, "a %zu-byte prefix of %zu was accepted", n, size);
        free(prefix);
    }
    /* Random header lengths. */
    unsigned char *bytes = malloc(size);
    for (int it = 0; it < 2000; it++) {
        memcpy(bytes, valid, size);
        uint64_t length = it % 2 ? rng_next() % (size + 16) : rng_next();
        for (int i = 0; i < 8; i++)
            bytes[i] = (unsigned char)(length >> (8 * i));
        open_and_touch(bytes, size);
    }
    free(bytes);
    free(valid);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *malformed = tcase_create("malformed");
    tcase_add_loop_test(malformed, test_malformed_header, 0, (int)(sizeof header_cases / sizeof header_cases[0]));
    tcase_add_test(malformed, test_deep_nesting);
    tcase_add_test(malformed, test_empty_file);
    tcase_add_test(malformed, test_shorter_than_length_field);
    tcase_add_test(malformed, test_header_length_zero);
    tcase_add_test(malformed, test_header_length_huge);
    tcase_add_test(malformed, test_header_length_beyond_file);
    tcase_add_test(malformed, test_not_a_file);
    suite_add_tcase(s, malformed);

    TCase *valid = tcase_create("valid");
    tcase_add_test(valid, test_round_trip_every_dtype);
    tcase_add_test(valid, test_known_values);
    tcase_add_test(valid, test_scalars_empty_tensors_and_odd_names);
    tcase_add_test(valid, test_foreign_layout);
    tcase_add_test(valid, test_empty_header_object);
    suite_add_tcase(s, valid);

    TCase *api = tcase_create("api");
    tcase_add_test(api, test_read_f32_errors);
    tcase_add_loop_test(api, test_writer_rejects, 0, (int)(sizeof writer_cases / sizeof writer_cases[0]));
    tcase_add_test(api, test_writer_metadata_and_io_errors);
    tcase_add_test(api, test_writer_replaces_atomically);
    suite_add_tcase(s, api);

    TCase *fuzz = tcase_create("fuzz");
    tcase_set_timeout(fuzz, 120); /* ASan builds are slower */
    tcase_add_test(fuzz, test_fuzz_byte_flips);
    tcase_add_test(fuzz, test_fuzz_truncations_and_lengths);
    suite_add_tcase(s, fuzz);
    return s;
}

int main(void)
{
    temp_dir_create("safetensors");
    SRunner *runner = srunner_create(safetensors_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    temp_dir_remove();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
