/* test-tasks.c — task files and scoring (core/eval/tasks.h): std::mt19937's values from the C++
 * standard, the three readers on hand-made files (llama-perplexity's line and field rules, its
 * dropped last Winogrande line, a header, quoted sentences, the binary layout built byte by
 * byte), every kind of malformed file refused with one line naming the file and the task, the
 * selection's shape, and scoring on stories260K: the result's arithmetic, the errors (context
 * too small, a choice adding no token) and a cancel. Agreement with llama-perplexity itself is
 * tests/cli/test-tasks.sh. */
#include "testutil.h"
#include "testmodel.h"
#include <math.h>

#include "core/eval/tasks.h"

static void test_mt19937(void **state)
{
    (void)state;
    qb_mt19937 r;
    qb_mt19937_seed(&r, 5489); /* [rand.predef]: the 10000th value of a default-seeded mt19937 */
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = qb_mt19937_next(&r);
    assert_int_equal(v, 4123659995u);
    qb_mt19937_seed(&r, 1);
    assert_int_equal(qb_mt19937_next(&r), 1791095845u); /* std::mt19937(1)() */
    /* the distribution: always within [0, hi]; hi = 0 gives 0 */
    for (int i = 0; i < 1000; i++) {
        uint64_t hi = (uint64_t)(i * 7919 % 100000);
        assert_true(qb_mt19937_uniform(&r, hi) <= hi);
    }
    assert_int_equal(qb_mt19937_uniform(&r, 0), 0);
}

static qb_status parse(qb_tasks_kind k, const char *text, qb_task_set *s, char *msg)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_status st = qb_tasks_parse(&ctx, k, "t.file", text, strlen(text), s);
    if (msg) snprintf(msg, 512, "%s", qb_ctx_errmsg(&ctx));
    return st;
}

/* The text must be refused with a message naming the file and holding want. */
static void bad(qb_tasks_kind k, const char *text, const char *want)
{
    qb_task_set s;
    char msg[512];
    qb_status st = parse(k, text, &s, msg);
    if (st == QB_OK || !strstr(msg, "t.file") || !strstr(msg, want) || strchr(msg, '\n'))
        fail_msg("expected an error with '%s', got %d '%s'", want, st, msg);
    assert_int_equal(s.n, 0);
    assert_null(s.tasks);
}

static void test_hellaswag_read(void **state)
{
    (void)state;
    const char *good = "A man sits.\n2\nHe stands.\nHe eats.\nHe sleeps.\nHe runs.\n"
                       "Ctx two\n 0 \r\ne0\ne1\ne2\ne3\n";
    qb_task_set s;
    assert_int_equal(parse(QB_TASKS_HELLASWAG, good, &s, NULL), QB_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.n_file, 2);
    assert_string_equal(s.tasks[0].context, "A man sits.");
    assert_int_equal(s.tasks[0].gold, 2);
    assert_int_equal(s.tasks[0].labels[2], 1);
    assert_string_equal(s.tasks[0].choices[3], "He runs.");
    assert_int_equal(s.tasks[1].gold, 0);
    assert_int_equal(s.tasks[1].line, 7);
    qb_tasks_free(&s);
    /* without the final newline: the same; one empty line after it is dropped too (-f drops
     * one '\n', getline then ends without another line) */
    assert_int_equal(parse(QB_TASKS_HELLASWAG, "c\n1\na\nb\nc\nd", &s, NULL), QB_OK);
    assert_int_equal(s.n, 1);
    qb_tasks_free(&s);
    assert_int_equal(parse(QB_TASKS_HELLASWAG, "c\n1\na\nb\nc\nd\n\n", &s, NULL), QB_OK);
    assert_int_equal(s.n, 1);
    qb_tasks_free(&s);

    bad(QB_TASKS_HELLASWAG, "", "no tasks");
    bad(QB_TASKS_HELLASWAG, "c\n1\na\nb\nc\n", "task 1 (line 1): incomplete, 5 of its 6 lines");
    bad(QB_TASKS_HELLASWAG, "c\n1\na\nb\nc\nd\nc\n1\n", "task 2 (line 7): incomplete, 2");
    bad(QB_TASKS_HELLASWAG, "c\n4\na\nb\nc\nd\n", "task 1 (line 2): the gold ending index '4'");
    bad(QB_TASKS_HELLASWAG, "c\nx\na\nb\nc\nd\n", "task 1 (line 2)");
    bad(QB_TASKS_HELLASWAG, "c\n\na\nb\nc\nd\n", "task 1 (line 2)");
    bad(QB_TASKS_HELLASWAG, "c\n1 2\na\nb\nc\nd\n", "task 1 (line 2)");
    bad(QB_TASKS_HELLASWAG, "c\n1\na\nb\nc\nd\nc\n-1\na\nb\nc\nd\n", "task 2 (line 8)");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const char nul[] = "c\n1\na\nb\0x\nc\nd\n";
    assert_int_equal(qb_tasks_parse(&ctx, QB_TASKS_HELLASWAG, "t.file", nul, sizeof nul - 1, &s), QB_ERR_FORMAT);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "task 1 (line 4): a NUL byte"));
    assert_int_equal(qb_tasks_read(&ctx, QB_TASKS_HELLASWAG, "/nonexistent/hs.txt", &s), QB_ERR_IO);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "/nonexistent/hs.txt"));
}

static void test_winogrande_read(void **state)
{
    (void)state;
    qb_task_set s;
    /* a header, a quoted sentence with commas, an unquoted one; the last line is not read */
    const char *csv = "index,sentence,option1,option2,answer\n"
                      "0,\"Sarah, not Maria, said _ was late.\",Sarah,Maria,2\n"
                      "1,The cup beat the _ at chess.,box,cup,1\r\n"
                      "2,Never read _ here.,x,y,1\n";
    assert_int_equal(parse(QB_TASKS_WINOGRANDE, csv, &s, NULL), QB_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.skipped, 1);
    assert_true(s.last_dropped);
    assert_string_equal(s.tasks[0].context, "Sarah, not Maria, said ");
    assert_string_equal(s.tasks[0].after, " was late.");
    assert_string_equal(s.tasks[0].choices[0], "Sarah");
    assert_string_equal(s.tasks[0].choices[1], "Maria");
    assert_int_equal(s.tasks[0].gold, 2);
    assert_int_equal(s.tasks[0].line, 2);
    assert_string_equal(s.tasks[1].context, "The cup beat the ");
    assert_string_equal(s.tasks[1].after, " at chess.");
    assert_int_equal(s.tasks[1].gold, 1);
    qb_tasks_free(&s);
    /* two final newlines: the last line is read; " 2x" reads as 2 (operator>> stops at x) */
    assert_int_equal(parse(QB_TASKS_WINOGRANDE, "0,a _ b,x,y, 2x\n1,c _,x,y,1\n\n", &s, NULL), QB_OK);
    assert_int_equal(s.n, 2);
    assert_false(s.last_dropped);
    assert_int_equal(s.tasks[0].gold, 2);
    qb_tasks_free(&s);

    bad(QB_TASKS_WINOGRANDE, "", "no tasks");
    bad(QB_TASKS_WINOGRANDE, "0,a _ b,x,y,1\n", "no tasks (llama-perplexity reads a line only when");
    bad(QB_TASKS_WINOGRANDE, "0,a _ b,x,1\nlast\n", "line 1 (task 1): 3 of the 4 commas");
    bad(QB_TASKS_WINOGRANDE, "0,\"a _, b,x,y,1\nlast\n", "a quote is not closed");
    bad(QB_TASKS_WINOGRANDE, "0,a _ b,x,y,1\n1,no blank,x,y,1\nlast\n", "line 2 (task 2): no '_'");
    bad(QB_TASKS_WINOGRANDE, "0,a _ b,x,y,3\nlast\n", "line 1 (task 1): the answer '3' is not 1 or 2");
    bad(QB_TASKS_WINOGRANDE, "0,a _ b,x,y,answer\n1,a _ b,x,y,answer\nlast\n", "line 2 (task 1): the answer 'answer'");
    bad(QB_TASKS_WINOGRANDE, "0,a _ b,x,y,-1\nlast\n", "the answer '-1'");
    bad(QB_TASKS_WINOGRANDE, "0,a _ b,x,y,\nlast\n", "the answer ''");
}

/* ---- the binary multiple-choice file, built byte by byte ---- */

typedef struct {
    const char *q;
    int n;
    const char *a[5];
    int label[5];
} mc_task;

static void put_str(qbt_bytes *b, const char *s)
{
    qbt_put_u32(b, (uint32_t)strlen(s));
    qbt_put(b, s, strlen(s));
}

static qbt_bytes build_mc(const mc_task *t, int n)
{
    qbt_bytes body = {0}, b = {0};
    uint32_t off[8];
    for (int k = 0; k < n; k++) {
        off[k] = (uint32_t)(4 + 4 * n + body.n);
        put_str(&body, t[k].q);
        qbt_put_u32(&body, (uint32_t)t[k].n);
        for (int j = 0; j < t[k].n; j++) put_str(&body, t[k].a[j]);
        for (int j = 0; j < t[k].n; j++) qbt_put_i32(&body, t[k].label[j]);
        qbt_put_u32(&body, 1); /* mc2: one answer, read and ignored */
        put_str(&body, "mc2");
        qbt_put_i32(&body, 1);
    }
    qbt_put_u32(&b, (uint32_t)n);
    for (int k = 0; k < n; k++) qbt_put_u32(&b, off[k]);
    qbt_put(&b, body.p, body.n);
    free(body.p);
    return b;
}

static void bad_mc(const qbt_bytes *b, const char *want)
{
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_task_set s;
    qb_status st = qb_tasks_parse(&ctx, QB_TASKS_MC, "t.file", (const char *)b->p, b->n, &s);
    const char *msg = qb_ctx_errmsg(&ctx);
    if (st == QB_OK || !strstr(msg, "t.file") || !strstr(msg, want))
        fail_msg("expected an error with '%s', got %d '%s'", want, st, msg);
    assert_int_equal(s.n, 0);
}

static void test_mc_read(void **state)
{
    (void)state;
    mc_task t[3] = {{"Q one", 3, {"a", "bb", "ccc"}, {0, 1, 0}},
                    {"Q two", 2, {"yes", "no"}, {1, 0}},
                    {"Q three", 4, {"w", "x", "y", "z"}, {0, 0, 0, 1}}};
    qbt_bytes b = build_mc(t, 3);
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_task_set s;
    assert_int_equal(qb_tasks_parse(&ctx, QB_TASKS_MC, "t.file", (const char *)b.p, b.n, &s), QB_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.tasks[0].context, "Q one");
    assert_int_equal(s.tasks[0].n_choices, 3);
    assert_string_equal(s.tasks[0].choices[2], "ccc");
    assert_int_equal(s.tasks[0].labels[1], 1);
    assert_int_equal(s.tasks[2].n_choices, 4);
    assert_int_equal(s.tasks[2].labels[3], 1);
    assert_int_equal(s.tasks[1].line, 16 + 58); /* after the header and task 1 */
    qb_tasks_free(&s);

    qbt_bytes c = {0};
    qbt_put_u32(&c, 0);
    bad_mc(&c, "no tasks (the u32 task count is 0)");
    c.n = 2;
    bad_mc(&c, "missing");
    free(c.p);
    c = (qbt_bytes){0};
    qbt_put_u32(&c, 1000);
    bad_mc(&c, "1000 tasks announced");
    free(c.p);
    /* a wrong offset */
    qbt_bytes d = build_mc(t, 3);
    d.p[8] ^= 1;
    bad_mc(&d, "task 2: its offset says byte");
    free(d.p);
    /* truncated anywhere: every cut of the body is refused */
    for (size_t cut = 16; cut < b.n; cut += 3) {
        qbt_bytes e = {b.p, cut, 0};
        bad_mc(&e, "task ");
    }
    /* trailing bytes */
    d = build_mc(t, 3);
    qbt_put_u32(&d, 7);
    bad_mc(&d, "4 bytes follow the last task");
    free(d.p);
    /* empty question, no answers, an empty answer, more than 100 answers */
    mc_task u[1] = {{"", 2, {"a", "b"}, {1, 0}}};
    d = build_mc(u, 1);
    bad_mc(&d, "task 1 (byte 8): an empty question");
    free(d.p);
    u[0] = (mc_task){"q", 0, {0}, {0}};
    d = build_mc(u, 1);
    bad_mc(&d, "task 1 (byte 8): no answers");
    free(d.p);
    u[0] = (mc_task){"q", 2, {"a", ""}, {1, 0}};
    d = build_mc(u, 1);
    bad_mc(&d, "answer 2 is empty");
    free(d.p);
    d = build_mc(u, 1);
    d.p[8 + 4 + 1] = 101; /* the answer count */
    bad_mc(&d, "more than 100 answers");
    free(d.p);
    free(b.p);
}

static void test_select(void **state)
{
    (void)state;
    char csv[8192] = "";
    for (int i = 0; i < 50; i++) snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "%d,s%d _ t,x,y,1\n", i, i);
    strcat(csv, "last\n");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    qb_task_set s;
    assert_int_equal(parse(QB_TASKS_WINOGRANDE, csv, &s, NULL), QB_OK);
    assert_int_equal(s.n, 50);
    assert_int_equal(qb_tasks_select(&ctx, &s, 0), QB_OK); /* all: file order */
    assert_string_equal(s.tasks[7].context, "s7 ");
    assert_int_equal(qb_tasks_select(&ctx, &s, 20), QB_OK);
    assert_int_equal(s.n, 20);
    assert_int_equal(s.n_file, 50);
    bool seen[50] = {0};
    for (int i = 0; i < 20; i++) {
        int k = atoi(s.tasks[i].context + 1);
        assert_false(seen[k]);
        seen[k] = true;
    }
    qb_tasks_free(&s);
    assert_int_equal(qb_tasks_default_count(QB_TASKS_HELLASWAG), 400); /* llama-perplexity's defaults */
    assert_int_equal(qb_tasks_default_count(QB_TASKS_WINOGRANDE), 0);
    assert_int_equal(qb_tasks_default_count(QB_TASKS_MC), 0);
    /* HellaSwag: every task, in a random order */
    char hs[8192] = "";
    for (int i = 0; i < 30; i++) snprintf(hs + strlen(hs), sizeof hs - strlen(hs), "c%d\n0\na\nb\nc\nd\n", i);
    assert_int_equal(parse(QB_TASKS_HELLASWAG, hs, &s, NULL), QB_OK);
    assert_int_equal(qb_tasks_select(&ctx, &s, 0), QB_OK);
    assert_int_equal(s.n, 30);
    int moved = 0, sum = 0;
    for (int i = 0; i < 30; i++) {
        int k = atoi(s.tasks[i].context + 1);
        moved += k != i;
        sum += k;
    }
    assert_int_equal(sum, 29 * 30 / 2);
    assert_true(moved > 0);
    qb_tasks_free(&s);
}

/* ---- scoring on stories260K ---- */

typedef struct {
    int calls, correct;
    double last_running;
} seen_t;

static void on_task(void *ud, const qb_task_score *t)
{
    seen_t *s = ud;
    s->calls++;
    assert_int_equal(t->index, s->calls);
    s->correct += t->correct;
    assert_int_equal(t->n_correct, s->correct);
    s->last_running = t->running;
}

static void test_score(void **state)
{
    (void)state;
    qb_model *m = qbt_open_model_or_skip("stories260K/stories260K-f32.gguf");
    qb_ctx ctx;
    qb_ctx_init(&ctx);
    const char *hs = "Lily went to the park.\n1\nThe sky was green and loud.\nShe saw a big dog.\nTables ate the "
                     "moon.\nRun run blue.\n"
                     "Tom had a red ball.\n0\nHe threw it to his friend.\nThe ball was a cat.\nSad tree went "
                     "up.\nIt is Monday in fish.\n";
    qb_task_set s;
    assert_int_equal(parse(QB_TASKS_HELLASWAG, hs, &s, NULL), QB_OK);
    seen_t seen = {0};
    qb_tasks_opts o = {.on_task = on_task, .task_ud = &seen};
    qb_tasks_result r;
    assert_int_equal(qb_tasks_score(&ctx, m, &s, &o, &r), QB_OK);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(r.n_done, 2);
    assert_int_equal(r.n_correct, seen.correct);
    assert_true(fabs(r.acc - 100.0 * r.n_correct / 2) < 1e-9);
    assert_true(fabs(seen.last_running - r.acc) < 1e-9);
    assert_true(r.n_tokens > 20);
    /* a context too small for a task */
    o.n_ctx = 8;
    assert_int_equal(qb_tasks_score(&ctx, m, &s, &o, &r), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "task 1 (line 1) needs"));
    /* cancelled before the first task */
    volatile int cancel = 1;
    o = (qb_tasks_opts){.cancel = &cancel};
    assert_int_equal(qb_tasks_score(&ctx, m, &s, &o, &r), QB_ERR_CANCELLED);
    qb_tasks_free(&s);
    /* a choice equal to another: nothing after the shared prefix */
    assert_int_equal(parse(QB_TASKS_HELLASWAG, "Lily ran.\n0\nShe fell.\nShe fell.\nShe fell.\nShe fell.\n", &s, NULL),
                     QB_OK);
    assert_int_equal(qb_tasks_score(&ctx, m, &s, NULL, &r), QB_ERR_ARG);
    assert_non_null(strstr(qb_ctx_errmsg(&ctx), "adds no token"));
    qb_tasks_free(&s);
    /* Winogrande: the final line's float arithmetic (fewer than 100 tasks: no final line) */
    assert_int_equal(parse(QB_TASKS_WINOGRANDE,
                           "0,Lily gave the _ to her mom and went home.,ball,sky,1\n"
                           "1,Tom saw a _.,dog,the,1\nlast\n",
                           &s, NULL),
                     QB_OK);
    seen = (seen_t){0};
    o = (qb_tasks_opts){.on_task = on_task, .task_ud = &seen};
    assert_int_equal(qb_tasks_score(&ctx, m, &s, &o, &r), QB_OK);
    assert_int_equal(r.n_done, 2);
    assert_false(r.final_line);
    float p = 1.f * r.n_correct / 2;
    assert_true(r.acc == (double)(100 * p));
    assert_true(r.acc_err == (double)(100.f * sqrtf(p * (1 - p) / 1)));
    qb_tasks_free(&s);
    qb_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mt19937),        cmocka_unit_test(test_hellaswag_read), cmocka_unit_test(test_winogrande_read),
        cmocka_unit_test(test_mc_read),        cmocka_unit_test(test_select),         cmocka_unit_test(test_score),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
