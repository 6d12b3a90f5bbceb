/* Bare-metal Cortex-M support for QEMU and Renode: vector table, reset (copy .data, zero .bss,
 * enable the FPU, paint the stack), instruction counting, output, exit with a code, and a fault
 * handler that exits with code 3 instead of hanging (DESIGN.md section 6).
 *
 * MCU_TICKS_TIM2: the STM32 TIM2 counter, one tick per instruction under QEMU -icount shift=0.
 * MCU_TICKS_MARK: a marker function whose executions a QEMU TCG plugin counts (no TIM2 on mps2).
 * MCU_IO_UART: STM32F7 USART1 (Renode); otherwise semihosting (QEMU).
 */
#include <stdint.h>

#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
int main(void);

#define REG(addr) (*(volatile uint32_t *)(addr))
#define STACK_PAINT 0x5AA5C33Cu

#if defined(MCU_TICKS_TIM2)
uint32_t board_ticks(void) { return REG(0x40000024); }  /* TIM2_CNT */

static void ticks_init(void) {
    REG(0x40023840) |= 1u;           /* RCC_APB1ENR: TIM2 clock */
    REG(0x40000028) = 0;             /* PSC: count every tick */
    REG(0x4000002C) = 0xFFFFFFFFu;   /* ARR: the full 32 bits */
    REG(0x40000014) = 1u;            /* EGR: UG, load PSC */
    REG(0x40000000) = 1u;            /* CR1: CEN */
}
#else
/* The plugin records its instruction count each time this function starts. */
__attribute__((noinline)) uint32_t board_ticks(void) {
    __asm__ volatile("" ::: "memory");
    return 0;
}

static void ticks_init(void) {}
#endif

#if defined(MCU_IO_UART)
void board_puts(const char *s) {
    static int enabled;
    if (!enabled) {
        REG(0x40011000) |= 1u | (1u << 3);  /* USART1_CR1: UE, TE */
        enabled = 1;
    }
    for (; *s; s++) {
        while (!(REG(0x4001101C) & (1u << 7))) {}  /* ISR: TXE */
        REG(0x40011028) = (uint8_t)*s;             /* TDR */
    }
}

static void board_exit(int code) {
    char line[] = "exit 0\n";
    line[5] = (char)('0' + (code & 7));
    board_puts(line);
    for (;;) __asm__ volatile("wfi");
}
#else
static int semihost(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_puts(const char *s) { semihost(0x04, (void *)s); }  /* SYS_WRITE0 */

static void board_exit(int code) {
    uint32_t block[2] = {0x20026u, (uint32_t)code};  /* ADP_Stopped_ApplicationExit, status */
    semihost(0x20, block);                          /* SYS_EXIT_EXTENDED */
    for (;;) {}
}
#endif

uint32_t board_stack_used(void) {
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT) p++;
    return (uint32_t)((const char *)&_estack - (const char *)p);
}

void Reset_Handler(void) {
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    REG(0xE000ED88) |= 0xFu << 20;  /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n isb");
#endif
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &_sstack; p < sp - 16;) *p++ = STACK_PAINT;
    ticks_init();
    board_exit(main());
}

void Fault_Handler(void) {
    board_puts("hardfault\n");
    board_exit(3);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
};
