#include "model/marian_reader.h"
