/* Test harness: runs the model on every input linked into the program, prints each output in hex
 * and the instruction counts, then per-op counts of the first input and the stack high-water mark.
 *
 * Lines (parsed by mcunet_lite.deploy):
 *   ticks calib A B          two consecutive counter reads (their difference is the read overhead)
 *   ticks run N T0 T1        counter around model_invoke on input N
 *   out N K HEX              bytes of output K of input N (several lines per output)
 *   mark_overhead D          counter difference of two marks with nothing between them
 *   op I D                   counter total of mark I (an op; several calls in a patch loop)
 *   stack BYTES / done
 * Counters are raw: the host subtracts the overheads (and, where a plugin counts, replays this
 * file's sequence of board_ticks() calls).
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "model.h"

extern const uint32_t mcu_num_inputs;
extern const uint8_t mcu_inputs[][MODEL_INPUT_BYTES];

static char line[160];
static uint32_t op_ticks[MODEL_NUM_MARKS + 1], last;

static char *put_text(char *p, const char *s) {
    while (*s) *p++ = *s++;
    return p;
}

static char *put_uint(char *p, uint32_t v) {
    char digits[10];
    int n = 0;
    do digits[n++] = (char)('0' + v % 10); while (v /= 10);
    while (n) *p++ = digits[--n];
    return p;
}

/* A line of up to three numbers after a label. */
static void report(const char *label, int n, uint32_t a, uint32_t b, uint32_t c) {
    char *p = put_text(line, label);
    uint32_t v[3] = {a, b, c};
    for (int i = 0; i < n; i++) p = put_uint(put_text(p, " "), v[i]);
    p = put_text(p, "\n");
    *p = 0;
    board_puts(line);
}

static void report_output(uint32_t n, int k) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *y = (const uint8_t *)model_output(k);
    for (uint32_t i = 0; i < model_output_bytes[k];) {
        char *p = put_uint(put_text(put_uint(put_text(line, "out "), n), " "), (uint32_t)k);
        p = put_text(p, " ");
        for (int j = 0; j < 64 && i < model_output_bytes[k]; j++, i++) {
            *p++ = hex[y[i] >> 4];
            *p++ = hex[y[i] & 15];
        }
        *p++ = '\n';
        *p = 0;
        board_puts(line);
    }
}

static void mark(int i) {
    uint32_t t = board_ticks();
    op_ticks[i] += t - last;
    last = t;
}

static void load(uint32_t n) {
    void *slot = model_input_slot();
    if (slot) memcpy(slot, mcu_inputs[n], MODEL_INPUT_BYTES);
}

int main(void) {
    uint32_t a = board_ticks(), b = board_ticks();
    report("ticks calib", 2, a, b, 0);
    for (uint32_t n = 0; n < mcu_num_inputs; n++) {
        load(n);
        uint32_t t0 = board_ticks();
        model_invoke(mcu_inputs[n], 0);
        uint32_t t1 = board_ticks();
        report("ticks run", 3, n, t0, t1);
        for (int k = 0; k < MODEL_NUM_OUTPUTS; k++) report_output(n, k);
    }
    load(0);
    last = board_ticks();
    mark(MODEL_NUM_MARKS);
    op_ticks[MODEL_NUM_MARKS] = 0;
    mark(MODEL_NUM_MARKS);
    model_invoke(mcu_inputs[0], mark);
    report("mark_overhead", 1, op_ticks[MODEL_NUM_MARKS], 0, 0);
    for (int i = 0; i < MODEL_NUM_MARKS; i++) report("op", 2, (uint32_t)i, op_ticks[i], 0);
    report("stack", 1, board_stack_used(), 0, 0);
    board_puts("done\n");
    return 0;
}
