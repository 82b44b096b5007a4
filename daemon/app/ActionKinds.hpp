// The registry of every action kind this build knows: the one place where the action areas meet.
//
// Each kind lives in its own area (log in rules/, evict / evict_pattern / publish in redis/,
// webhook in webhook/, push in hub/) with its Action class, its parser and its executor, and
// joins the daemon through one registration call here. The executors are attached to the router
// where the daemon builds the components that run them (app/Daemon.cpp).
#pragma once

#include "rules/Action.hpp"

namespace pgfanout::app {

const rules::ActionRegistry& action_kinds();

}  // namespace pgfanout::app
