// The public header compiles as C++ and links (extern "C").
#include <dmabroker.h>

int main()
{
	dmabroker_alloc_desc d = {};
	d.version = DMABROKER_ALLOC_DESC_VERSION;
	struct dmabroker *b = nullptr;
	return dmabroker_disconnect(b) == nullptr && d.version == 2 && d.flags == 0 ? 0 : 1;
}
