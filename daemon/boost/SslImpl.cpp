// The one translation unit that compiles Asio's SSL implementation (BOOST_ASIO_SEPARATE_COMPILATION
// is defined for the whole project), like AsioImpl.cpp does for the rest of Asio.
#include <boost/asio/ssl/impl/src.hpp>
