"""Our WSDL for the IEC 62325-504 endpoint, served at ``<iec62325_path>?wsdl``.

Written here, not copied from REE's files: the same names on the wire
(service ``ServiceEME``, port type ``port_TFEDI_type``, operation
``request``, messages in the 61968-100 namespace) with a compact inline
schema that describes what this profile uses, enough for a generic SOAP
toolkit (zeep, JAX-WS) to call ``request``. Two bindings: SOAP 1.1
(``binding_TFEDI``, SOAPAction ``#request``, port ``Service_EME_Port``, first
so that toolkits default to it) and SOAP 1.2 (``binding_TFEDI_soap12``, port
``Service_EME_Port_soap12``).

The address comes from the configuration, never from the request's ``Host``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from lxml import etree

from concentrador.protocol.iec62325.errors import ErrorCode, Iec62325Error
from concentrador.protocol.iec62325.wire import (
    CMSG_NAMESPACE,
    MSG_NAMESPACE,
    SOAP_ACTION,
    WSS_NAMESPACE,
)

__all__ = ["render_504_wsdl"]

_ID = """<xs:complexType><xs:simpleContent><xs:extension base="xs:string">
  <xs:attribute name="idType" type="xs:string"/><xs:attribute name="idAuthority" type="xs:string"/>
  <xs:attribute name="kind" type="xs:string"/><xs:attribute name="objectType" type="xs:string"/>
</xs:extension></xs:simpleContent></xs:complexType>"""

_MSG_SCHEMA = f"""<xs:schema targetNamespace="{MSG_NAMESPACE}" xmlns="{MSG_NAMESPACE}"
    elementFormDefault="qualified">
 <xs:complexType name="OptionType"><xs:sequence>
  <xs:element name="name" type="xs:string"/>
  <xs:element name="value" type="xs:string" minOccurs="0"/>
 </xs:sequence></xs:complexType>
 <xs:complexType name="HeaderType"><xs:sequence>
  <xs:element name="Verb" type="xs:string"/>
  <xs:element name="Noun" type="xs:string"/>
  <xs:element name="Revision" type="xs:string" minOccurs="0"/>
  <xs:element name="Context" type="xs:string" minOccurs="0"/>
  <xs:element name="Timestamp" type="xs:dateTime" minOccurs="0"/>
  <xs:element name="Source" type="xs:string" minOccurs="0"/>
  <xs:element name="MessageID" type="xs:string" minOccurs="0"/>
  <xs:element name="CorrelationID" type="xs:string" minOccurs="0"/>
  <xs:element name="Comment" type="xs:string" minOccurs="0"/>
  <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
 </xs:sequence></xs:complexType>
 <xs:complexType name="RequestType"><xs:sequence>
  <xs:element name="StartTime" type="xs:dateTime" minOccurs="0"/>
  <xs:element name="EndTime" type="xs:dateTime" minOccurs="0"/>
  <xs:element name="Option" type="OptionType" minOccurs="0" maxOccurs="unbounded"/>
  <xs:element name="ID" minOccurs="0" maxOccurs="unbounded">{_ID}</xs:element>
 </xs:sequence></xs:complexType>
 <xs:complexType name="ErrorType"><xs:sequence>
  <xs:element name="code" type="xs:string"/>
  <xs:element name="level" type="xs:string" minOccurs="0"/>
  <xs:element name="reason" type="xs:string" minOccurs="0"/>
  <xs:element name="details" type="xs:string" minOccurs="0"/>
 </xs:sequence></xs:complexType>
 <xs:complexType name="ReplyType"><xs:sequence>
  <xs:element name="Result" type="xs:string"/>
  <xs:element name="Error" type="ErrorType" minOccurs="0" maxOccurs="unbounded"/>
  <xs:element name="ID" minOccurs="0" maxOccurs="unbounded">{_ID}</xs:element>
 </xs:sequence></xs:complexType>
 <xs:complexType name="PayloadType"><xs:sequence>
  <!-- The XSD has a choice of (any | Compressed) then Format; zeep cannot read
       an xs:any inside a choice, so this equivalent order is used for the
       shapes this profile sends (Compressed + Format, or one document). -->
  <xs:element name="Compressed" type="xs:string" minOccurs="0"/>
  <xs:element name="Format" type="xs:string" minOccurs="0"/>
  <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
 </xs:sequence></xs:complexType>
 <xs:element name="RequestMessage"><xs:complexType><xs:sequence>
  <xs:element name="Header" type="HeaderType"/>
  <xs:element name="Request" type="RequestType" minOccurs="0"/>
  <xs:element name="Payload" type="PayloadType" minOccurs="0"/>
 </xs:sequence></xs:complexType></xs:element>
 <xs:element name="ResponseMessage"><xs:complexType><xs:sequence>
  <xs:element name="Header" type="HeaderType"/>
  <xs:element name="Reply" type="ReplyType"/>
  <xs:element name="Payload" type="PayloadType" minOccurs="0"/>
 </xs:sequence></xs:complexType></xs:element>
 <xs:element name="FaultMessage"><xs:complexType><xs:sequence>
  <xs:element name="Reply" type="ReplyType"/>
 </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""

_CMSG_SCHEMA = f"""<xs:schema targetNamespace="{CMSG_NAMESPACE}" xmlns="{CMSG_NAMESPACE}"
    elementFormDefault="qualified">
 <xs:complexType name="TimeIntervalType"><xs:sequence>
  <xs:element name="start" type="xs:dateTime"/>
  <xs:element name="end" type="xs:dateTime" minOccurs="0"/>
 </xs:sequence></xs:complexType>
 <xs:element name="Parameter"><xs:complexType><xs:sequence>
  <xs:element name="name" type="xs:string"/>
  <xs:element name="value" type="xs:string" minOccurs="0"/>
 </xs:sequence></xs:complexType></xs:element>
 <xs:element name="MessageList"><xs:complexType><xs:sequence>
  <xs:element name="Message" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:sequence>
   <xs:element name="Code" type="xs:positiveInteger"/>
   <xs:element name="MessageIdentification" type="xs:string"/>
   <xs:element name="MessageVersion" type="xs:positiveInteger" minOccurs="0"/>
   <xs:element name="Status" type="xs:string" minOccurs="0"/>
   <xs:element name="ApplicationTimeInterval" type="TimeIntervalType"/>
   <xs:element name="ServerTimestamp" type="xs:dateTime"/>
   <xs:element name="Type" type="xs:string"/>
   <xs:element name="Owner" type="xs:string"/>
  </xs:sequence></xs:complexType></xs:element>
 </xs:sequence></xs:complexType></xs:element>
 <xs:element name="QueryData"><xs:complexType><xs:sequence>
  <xs:element name="RequestParameters"><xs:complexType><xs:sequence>
   <xs:element ref="Parameter" maxOccurs="unbounded"/>
  </xs:sequence></xs:complexType></xs:element>
  <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
 </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""


def _binding(name: str, soap: str, action: str) -> str:
    return f"""<wsdl:binding name="{name}" type="wss:port_TFEDI_type">
  <{soap}:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
  <wsdl:operation name="request">
   <{soap}:operation {action} style="document"/>
   <wsdl:input><{soap}:body use="literal"/></wsdl:input>
   <wsdl:output><{soap}:body use="literal"/></wsdl:output>
   <wsdl:fault name="msgFaultMessage">
    <{soap}:fault name="msgFaultMessage" use="literal"/>
   </wsdl:fault>
  </wsdl:operation>
 </wsdl:binding>"""


_WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:msg="{MSG_NAMESPACE}" xmlns:wss="{WSS_NAMESPACE}"
    targetNamespace="{WSS_NAMESPACE}">
 <wsdl:types>{_MSG_SCHEMA}{_CMSG_SCHEMA}</wsdl:types>
 <wsdl:message name="msgRequestMessage">
  <wsdl:part name="parameter" element="msg:RequestMessage"/>
 </wsdl:message>
 <wsdl:message name="msgResponseMessage">
  <wsdl:part name="parameter" element="msg:ResponseMessage"/>
 </wsdl:message>
 <wsdl:message name="msgFaultMsg">
  <wsdl:part name="msgFaultMessage" element="msg:FaultMessage"/>
 </wsdl:message>
 <wsdl:portType name="port_TFEDI_type">
  <wsdl:operation name="request">
   <wsdl:input message="wss:msgRequestMessage"/>
   <wsdl:output message="wss:msgResponseMessage"/>
   <wsdl:fault name="msgFaultMessage" message="wss:msgFaultMsg"/>
  </wsdl:operation>
 </wsdl:portType>
 {_binding("binding_TFEDI", "soap", f'soapAction="{SOAP_ACTION}"')}
 {_binding("binding_TFEDI_soap12", "soap12", 'soapActionRequired="false"')}
 <wsdl:service name="ServiceEME">
  <wsdl:port name="Service_EME_Port" binding="wss:binding_TFEDI">
   <soap:address location="https://concentrador.invalid/ServiceEME"/>
  </wsdl:port>
  <wsdl:port name="Service_EME_Port_soap12" binding="wss:binding_TFEDI_soap12">
   <soap12:address location="https://concentrador.invalid/ServiceEME"/>
  </wsdl:port>
 </wsdl:service>
</wsdl:definitions>
"""

_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
_ADDRESS12 = "{http://schemas.xmlsoap.org/wsdl/soap12/}address"


def render_504_wsdl(location: str) -> bytes:
    """The 504 WSDL with ``location`` (absolute http(s) URL) as both ports' address."""
    parts = urlsplit(location)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Iec62325Error(
            ErrorCode.INTERNAL, f"WSDL location must be an absolute http(s) URL: {location!r}"
        )
    if any(ch.isspace() or ord(ch) < 0x20 for ch in location):
        raise Iec62325Error(ErrorCode.INTERNAL, "WSDL location must not hold spaces or controls")
    # Our own trusted text, so plain lxml; the address is set as an attribute
    # so lxml escapes it.
    root = etree.fromstring(_WSDL.encode())
    for address in (*root.iter(_ADDRESS), *root.iter(_ADDRESS12)):
        address.set("location", location)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
