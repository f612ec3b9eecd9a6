#include "model/weights_validation.h"
