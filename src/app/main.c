/* main.c — placeholder entry point (replaced by the real command line). */
#include <stdio.h>
int main(void) { puts("quantbench"); return 0; }
