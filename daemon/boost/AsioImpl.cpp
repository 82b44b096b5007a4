// The one translation unit that compiles Asio's implementation (BOOST_ASIO_SEPARATE_COMPILATION
// is defined for the whole project), so other files include only Asio's declarations.
#include <boost/asio/impl/src.hpp>
