/* test-tui-hit.c — the mouse arithmetic of the workbench (src/tui/hit.h): which list row a
 * click lands on in a scrolled list (browser: rows from window line 1; sensitivity view: from
 * line 2), and the first row shown for a cursor, which the click mapping must agree with. */
#include "testutil.h"

#include "tui/panels/hit.h"

static void test_hit_rows(void **state)
{
    (void)state;
    /* browser: header on line 0, 10 visible lines from line 1, list scrolled to row 5 of 30 */
    assert_int_equal(tui_hit_row(0, 1, 5, 30, 10), -1);  /* the header line */
    assert_int_equal(tui_hit_row(1, 1, 5, 30, 10), 5);   /* first visible row */
    assert_int_equal(tui_hit_row(10, 1, 5, 30, 10), 14); /* last visible line */
    assert_int_equal(tui_hit_row(11, 1, 5, 30, 10), -1); /* below the list area */
    /* a short list: lines past its end hit nothing */
    assert_int_equal(tui_hit_row(3, 1, 0, 2, 10), -1);
    assert_int_equal(tui_hit_row(2, 1, 0, 2, 10), 1);
    /* sensitivity view: title and a blank line, rows from line 2 */
    assert_int_equal(tui_hit_row(2, 2, 0, 7, 20), 0);
    assert_int_equal(tui_hit_row(1, 2, 0, 7, 20), -1);
    assert_int_equal(tui_hit_row(-1, 1, 0, 7, 20), -1);
    assert_int_equal(tui_hit_row(3, 1, -1, 7, 20), -1);
}

static void test_list_top(void **state)
{
    (void)state;
    assert_int_equal(tui_list_top(10, 0), 0);
    assert_int_equal(tui_list_top(10, 9), 0);  /* the last line of the first screen */
    assert_int_equal(tui_list_top(10, 10), 1); /* one past: scrolled by one */
    assert_int_equal(tui_list_top(10, 25), 16);
    assert_int_equal(tui_list_top(0, 3), 3);   /* degenerate window: the cursor's row */
    /* a click on the line of the cursor gives the cursor's row back, for every cursor */
    for (int vis = 1; vis < 12; vis++)
        for (int c = 0; c < 40; c++) {
            const int top = tui_list_top(vis, c);
            int line = -1;
            for (int y = 2; y < 2 + vis; y++)
                if (tui_hit_row(y, 2, top, 40, vis) == c) line = y;
            if (line < 0) fail_msg("cursor %d not on screen (visible %d, top %d)", c, vis, top);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_rows),
        cmocka_unit_test(test_list_top),
    };
    return cmocka_run_group_tests_name("tui-hit", tests, NULL, NULL);
}
