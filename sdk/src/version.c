#include "sla2/sla2.h"

#define SLA2_STR2(x) #x
#define SLA2_STR(x) SLA2_STR2(x)

const char *sla2_version_string(void)
{
    return SLA2_STR(SLA2_VERSION_MAJOR) "." SLA2_STR(SLA2_VERSION_MINOR) "." SLA2_STR(SLA2_VERSION_PATCH);
}

int sla2_version_number(void)
{
    return SLA2_VERSION_NUMBER;
}
