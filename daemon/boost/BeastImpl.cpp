// The one translation unit that compiles Beast's implementation (BOOST_BEAST_SEPARATE_COMPILATION
// is defined for the whole project), like AsioImpl.cpp does for Asio.
#include <boost/beast/src.hpp>
