/* The board interface on a PC: stdout, no instruction counter, no stack measurement. */
#include <stdio.h>

#include "board.h"

uint32_t board_ticks(void) { return 0; }

void board_puts(const char *s) { fputs(s, stdout); }

uint32_t board_stack_used(void) { return 0; }
