/* test-lua.c — the embedding API the TUI and the runner build on (src/lua/lqb.h): running code
 * with errors as "chunk:line: message" plus traceback, print routed to the host, a borrowed
 * model left open when the state closes, the cancel flag and the memory cap stopping code with
 * the state still usable afterwards, file output refused without an output folder. */
#include "testutil.h"

#include "core/model/model.h"
#include "lua/lqb.h"

typedef struct {
    char text[8192];
    int lines;
} capture;

static void cap_line(void *ud, const char *line)
{
    capture *c = ud;
    c->lines++;
    strncat(c->text, line, sizeof c->text - strlen(c->text) - 2);
    strcat(c->text, "\n");
}

static void test_exec_and_print(void **state)
{
    (void)state;
    lua_State *L = qb_lua_new(NULL);
    assert_non_null(L);
    capture c = {{0}, 0};
    qb_lua_set_print(L, cap_line, &c);
    char err[512];
    assert_int_equal(qb_lua_exec(L, "print('a', 1, nil)\nprint('two\\nlines')", "t", err, sizeof err), 0);
    assert_string_equal(c.text, "a\t1\tnil\ntwo\nlines\n");
    assert_int_equal(c.lines, 3);
    /* qb is both a global and package.loaded.qb; io and os are not there */
    assert_int_equal(qb_lua_exec(L, "assert(qb == require('qb')); assert(io == nil and os == nil)", "t", err, sizeof err), 0);
    assert_int_equal(lua_gettop(L), 0);
    qb_lua_close(L);
}

static void test_errors(void **state)
{
    (void)state;
    lua_State *L = qb_lua_new(NULL);
    char err[1024];
    assert_int_not_equal(qb_lua_exec(L, "local x = = 2", "cmd", err, sizeof err), 0);
    assert_true(strncmp(err, "cmd:1: unexpected symbol", 24) == 0);
    assert_int_not_equal(qb_lua_exec(L, "local t\n\nreturn t.x", "cmd", err, sizeof err), 0);
    assert_true(strncmp(err, "cmd:3: attempt to index a nil value", 35) == 0);
    assert_non_null(strstr(err, "\nstack traceback:"));
    assert_int_not_equal(qb_lua_exec(L, "qb.plot.line(5)", "cmd", err, sizeof err), 0);
    assert_true(strncmp(err, "cmd:1: bad argument #1 to 'line' (table expected, got number)", 61) == 0);
    /* a tiny buffer is truncated, not overrun */
    char small[8];
    assert_int_not_equal(qb_lua_exec(L, "error('a long message here')", "cmd", small, sizeof small), 0);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(lua_gettop(L), 0);
    qb_lua_close(L);
}

static void test_borrowed_model(void **state)
{
    (void)state;
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_model *m = NULL;
    qbt_need(qbt_model_path("stories260K/stories260K.bin"));
    if (qb_model_open(&ctx, qbt_model_path("stories260K/stories260K.bin"), NULL, &m) != QB_OK) fail_msg("%s", qb_ctx_errmsg(&ctx));
    lua_State *L = qb_lua_new(NULL);
    qb_lua_push_model(L, m, false);
    lua_setglobal(L, "m");
    char err[512];
    assert_int_equal(qb_lua_exec(L, "assert(m:info().dim == 64); local t = m:tensor('blk.1.attn_q.weight')\n"
                                    "t:quantize('q8_0'); assert(t.format == 'q8_0'); m:close(); m = nil; collectgarbage()",
                                 "t", err, sizeof err), 0);
    qb_lua_close(L);
    /* still open and quantized by the script: the host owns it */
    qb_tensor *t = qb_model_find_tensor(m, "blk.1.attn_q.weight");
    assert_non_null(t);
    assert_int_equal(t->type, QB_TYPE_Q8_0);
    assert_int_equal(qb_model_params(m), 260032);
    qb_model_close(m);
}

static void test_cancel_and_reuse(void **state)
{
    (void)state;
    volatile int cancel = 1;
    qb_lua_opts o = {.cancel = &cancel};
    lua_State *L = qb_lua_new(&o);
    char err[512];
    assert_int_not_equal(qb_lua_exec(L, "local n = 0\nwhile true do n = n + 1 end", "loop", err, sizeof err), 0);
    assert_true(strncmp(err, "loop:2: cancelled", 17) == 0);
    cancel = 0;
    assert_int_equal(qb_lua_exec(L, "x = 0; for i = 1, 100000 do x = x + i end; assert(x == 5000050000)", "t", err, sizeof err), 0);
    qb_lua_close(L);
}

static void test_time_limit(void **state)
{
    (void)state;
    qb_lua_opts o = {.max_seconds = 0.2};
    lua_State *L = qb_lua_new(&o);
    char err[512];
    assert_int_not_equal(qb_lua_exec(L, "while true do pcall(function() while true do end end) end", "loop", err, sizeof err), 0);
    assert_non_null(strstr(err, "time limit of 0.2 s exceeded"));
    /* each exec gets a fresh deadline */
    assert_int_equal(qb_lua_exec(L, "y = 1", "t", err, sizeof err), 0);
    qb_lua_close(L);
}

static void test_memory_cap(void **state)
{
    (void)state;
    qb_lua_opts o = {.mem_limit = 8u << 20};
    lua_State *L = qb_lua_new(&o);
    char err[512];
    assert_int_not_equal(qb_lua_exec(L, "local s = string.rep('x', 64 * 1024 * 1024)", "big", err, sizeof err), 0);
    assert_non_null(strstr(err, "not enough memory"));
    assert_true(qb_lua_mem_used(L) < (8u << 20));
    assert_int_equal(qb_lua_exec(L, "local t = {} for i = 1, 1000 do t[i] = i end", "t", err, sizeof err), 0);
    qb_lua_close(L);
}

static void test_repl(void **state)
{
    (void)state;
    lua_State *L = qb_lua_new(NULL);
    capture c = {{0}, 0};
    qb_lua_set_print(L, cap_line, &c);
    char err[512];
    assert_int_equal(qb_lua_repl(L, "1 + 1, 'x'", ":", err, sizeof err), 0);
    assert_int_equal(qb_lua_repl(L, "{b = {1, 2}, a = true}", ":", err, sizeof err), 0);
    assert_int_equal(qb_lua_repl(L, "y = 5", ":", err, sizeof err), 0);
    assert_int_equal(qb_lua_repl(L, "y", ":", err, sizeof err), 0);
    assert_string_equal(c.text, "2\nx\n{\"a\":true,\"b\":[1,2]}\n5\n");
    assert_int_not_equal(qb_lua_repl(L, "local x = = 1", "cmd", err, sizeof err), 0);
    assert_true(strncmp(err, "cmd:1: unexpected symbol", 24) == 0);
    assert_int_not_equal(qb_lua_repl(L, "nil + 1", "cmd", err, sizeof err), 0);
    assert_true(strncmp(err, "cmd:1: attempt to perform arithmetic on a nil value", 51) == 0);
    assert_int_equal(lua_gettop(L), 0);
    qb_lua_close(L);
}

static void test_no_output_folder(void **state)
{
    (void)state;
    lua_State *L = qb_lua_new(NULL);
    char err[512];
    assert_int_not_equal(qb_lua_exec(L, "qb.write_json('x.json', {1})", "w", err, sizeof err), 0);
    assert_non_null(strstr(err, "w:1: x.json: file output is not allowed"));
    qb_lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_and_print), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_borrowed_model), cmocka_unit_test(test_cancel_and_reuse),
        cmocka_unit_test(test_time_limit),     cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_no_output_folder), cmocka_unit_test(test_repl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
