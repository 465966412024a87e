#include "liftoff/app/app.hpp"

int main(int argc, char** argv) {
  return liftoff::app::main(argc, argv);
}
