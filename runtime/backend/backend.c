/* The backend interface's shared code (backend.h). */
#include "runtime/backend/backend.h"
