#include "model/ctranslate2_reader.h"
