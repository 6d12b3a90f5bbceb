/* What the test harness needs from a board: an instruction counter, text output, the stack's
 * high-water mark. Implemented bare-metal in board.c (QEMU, Renode) and on a PC in board_host.c. */
#ifndef MCU_BOARD_H
#define MCU_BOARD_H
#include <stdint.h>

uint32_t board_ticks(void);      /* instructions executed so far (TIM2 under -icount), or a plugin mark */
void board_puts(const char *s);  /* a text line to the host */
uint32_t board_stack_used(void); /* bytes of stack ever used (painted at reset) */
#endif
