/* A QEMU TCG plugin that counts executed guest instructions and records the count each time the
 * guest starts the function at address `mark` (board.c's board_ticks under MCU_TICKS_MARK); the
 * counts go to file `out`, one per line. Used where the board has no TIM2 (mps2-an500).
 * Built against the QEMU 7.2 plugin ABI (version 1), declared here: no QEMU headers are needed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
enum { QEMU_PLUGIN_CB_NO_REGS = 0, QEMU_PLUGIN_INLINE_ADD_U64 = 0 };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, int op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, vcpu_udata_cb_t cb, int flags,
                                            void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t count, mark_pc, *marks;
static size_t n_marks, cap;
static const char *out_path = "icount.txt";

static void on_mark(unsigned int vcpu, void *userdata) {
    (void)vcpu, (void)userdata;
    if (n_marks == cap) {
        cap = cap ? 2 * cap : 1024;
        marks = realloc(marks, cap * sizeof *marks);
    }
    marks[n_marks++] = count;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    for (size_t i = 0, n = qemu_plugin_tb_n_insns(tb); i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == mark_pc)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, 0);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &count, 1);
    }
}

static void on_exit_(qemu_plugin_id_t id, void *userdata) {
    (void)id, (void)userdata;
    FILE *f = fopen(out_path, "w");
    if (!f) return;
    for (size_t i = 0; i < n_marks; i++) fprintf(f, "%llu\n", (unsigned long long)marks[i]);
    fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc,
                                                               char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "mark=", 5)) mark_pc = strtoull(argv[i] + 5, 0, 0);
        if (!strncmp(argv[i], "out=", 4)) out_path = argv[i] + 4;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_, 0);
    return 0;
}
