/* Reading chat messages: with line editing and history (libedit, when built
 * with it) when stdin and stdout are terminals, plain lines otherwise. A line
 * starting with three double quotes opens a block of several lines, which ends
 * at a line ending with three double quotes (a line of just the three quotes
 * opens and closes one): the block is one message, of any length. */
#ifndef FP4RT_CLI_CHAT_INPUT_H
#define FP4RT_CLI_CHAT_INPUT_H

#include <signal.h>

typedef struct fp4rt_chat_input fp4rt_chat_input;

/* NULL when out of memory. `interrupted` is the flag a SIGINT handler sets:
 * a read it interrupts ends the input. */
fp4rt_chat_input *fp4rt_chat_input_open(volatile sig_atomic_t *interrupted);
/* The next message (malloc'ed, without the final newline; the caller frees),
 * or NULL at the end of input: end of file, Ctrl-D at the prompt, Ctrl-C
 * while reading (the flag set), or out of memory. An empty line gives "". */
char *fp4rt_chat_input_read(fp4rt_chat_input *in);
/* 1 when messages are read with line editing (the terminal prompt is shown). */
int fp4rt_chat_input_tty(const fp4rt_chat_input *in);
void fp4rt_chat_input_close(fp4rt_chat_input *in);

#endif
