#pragma once
// The command line: `liftoff serve | migrate up | migrate status | pg start|stop|status | version`.
// The one place that knows every part and wires them together.

namespace liftoff::app {

// Exit codes: 0 ok, 1 runtime failure, 2 invalid usage or configuration.
int main(int argc, char** argv);

}  // namespace liftoff::app
