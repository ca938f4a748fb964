#include "core-fixture.h"
TAP_DEFINE;
int main(void){tap_plan(0);return tap_done();}
