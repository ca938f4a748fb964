/* The public header compiles on its own as strict ISO C (see meson.build). */
#include <dmabroker.h>

int main(void)
{
	struct dmabroker_alloc_desc d = { DMABROKER_ALLOC_DESC_VERSION, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
	return (int)d.width - 1;
}
